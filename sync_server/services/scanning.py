"""Online scans: resolve the code (custom code, then signed `DC1`), decide with `shared.decide` on
the attendee's folded history and the zone's occupancy, and record the reading, in one
transaction that is safe when two gates scan the same ticket at once.

This is the hottest path of the server, so it speaks SQLAlchemy Core: a handful of statements,
no unit-of-work flush.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared.rules import (
    AttendeeStatus,
    AttendeeSummary,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    History,
    Reason,
    ScanInput,
    Status,
    Ticket,
    Verdict,
    VerdictWarning,
    ZoneOccupancy,
    decide,
    effective_direction,
)
from shared.sync import history_from_state, history_to_state
from shared.tickets import (
    InvalidSignature,
    MalformedCode,
    decode_ticket,
    is_signed_code,
    normalize_code,
    public_key_from_b64,
    verify_ticket,
)
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import Attendee, Checkpoint, Event, Scan, TicketType, Zone
from sync_server.services.events import bump_seq
from sync_server.webhooks import messages, outbox

__all__ = [
    "ATTENDEE_WITH_TYPE",
    "CheckpointRef",
    "Resolution",
    "ScanOutcome",
    "ScanRequestData",
    "ScannedAttendee",
    "policy_of",
    "resolve_code",
    "scan_online",
    "stored_code",
    "ticket_of",
    "ticket_type_ref",
    "type_view",
]

ZONE_FULL = "zone.capacity_reached"
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_STORED_CODE = 512

EVENTS: Table = Event.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
TICKET_TYPES: Table = TicketType.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
SCANS: Table = Scan.__table__  # type: ignore[assignment]

# Statements built once: constructing SQLAlchemy expressions per scan cost more than running them.
_CHECKPOINT = select(CHECKPOINTS).where(CHECKPOINTS.c.id == bindparam("id"))
_EVENT = select(
    EVENTS.c.id,
    EVENTS.c.organization_id,
    EVENTS.c.key_digest,
    EVENTS.c.ticket_public_key,
    EVENTS.c.name,
).where(EVENTS.c.id == bindparam("id"))
_SCAN = select(SCANS).where(SCANS.c.id == bindparam("id"))
_BY_CODE = (
    select(ATTENDEES.c.id, ATTENDEES.c.event_id, EVENTS.c.organization_id)
    .join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
    .where(ATTENDEES.c.code == bindparam("code"))
)
_BY_DIGEST = select(EVENTS.c.id, EVENTS.c.ticket_public_key).where(
    EVENTS.c.key_digest == bindparam("digest"), EVENTS.c.organization_id == bindparam("org")
)
_ZONE_LOCKED = (
    select(ZONES.c.capacity, ZONES.c.occupancy, ZONES.c.name)
    .where(ZONES.c.id == bindparam("id"))
    .with_for_update()
)
# An attendee row with its ticket type's fields (`tt_*`), as `ticket_of` and `type_view` read it.
ATTENDEE_WITH_TYPE = select(
    ATTENDEES,
    TICKET_TYPES.c.slug.label("tt_slug"),
    TICKET_TYPES.c.is_vip.label("tt_vip"),
    TICKET_TYPES.c.name.label("tt_name"),
    TICKET_TYPES.c.valid_from.label("tt_from"),
    TICKET_TYPES.c.valid_until.label("tt_until"),
).join(TICKET_TYPES, TICKET_TYPES.c.id == ATTENDEES.c.ticket_type_id)
_ATTENDEE = ATTENDEE_WITH_TYPE.where(ATTENDEES.c.id == bindparam("id"))
_ATTENDEE_LOCKED = _ATTENDEE.with_for_update(of=ATTENDEES)
_INSERT_SCAN = insert(SCANS)
_UPDATE_ATTENDEE = (
    update(ATTENDEES)
    .where(ATTENDEES.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        entries=bindparam("b_entries"),
        last_scan_at=bindparam("b_last"),
        seq=bindparam("b_seq"),
    )
)
_ZONE_ADD = (
    update(ZONES)
    .where(ZONES.c.id == bindparam("b_id"))
    .values(occupancy=ZONES.c.occupancy + bindparam("b_delta"))
)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a scanned string turned out to be: an attendee (maybe of another event) or an error."""

    attendee_id: str | None = None
    event_id: str | None = None
    error: Reason | None = None


@dataclass(frozen=True, slots=True)
class ScanRequestData:
    code: str
    direction: Direction | None = None
    scanned_at: datetime | None = None
    scan_id: str | None = None
    operator: str | None = None
    device_id: str | None = None
    manual: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    id: str
    event_id: str
    zone_id: str | None


@dataclass(frozen=True, slots=True)
class ScannedAttendee:
    id: str
    first_name: str
    last_name: str
    email: str | None
    ticket_type: str
    tags: list[str]
    is_vip: bool
    status: str


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    verdict: Verdict
    scan_id: str | None
    attendee: ScannedAttendee | None
    checkpoint: CheckpointRef
    scanned_at: datetime


def stored_code(raw: str) -> str:
    """The scanned text as the log keeps it: printable, at most 512 characters."""
    return _UNPRINTABLE.sub("\ufffd", raw[:MAX_STORED_CODE])


def policy_of(checkpoint: Any) -> CheckpointPolicy:
    """The rules' view of a checkpoint (a `Checkpoint` or a row with the same columns)."""
    return CheckpointPolicy(
        id=checkpoint.id,
        event_id=checkpoint.event_id,
        zone_id=checkpoint.zone_id,
        direction=CheckpointDirection(checkpoint.direction),
        active=checkpoint.active,
        allowed_ticket_types=frozenset(checkpoint.allowed_ticket_types),
        required_tags=frozenset(checkpoint.required_tags),
        excluded_tags=frozenset(checkpoint.excluded_tags),
        max_entries=checkpoint.max_entries,
        allow_reentry=checkpoint.allow_reentry,
        anti_passback=checkpoint.anti_passback,
        open_from=checkpoint.open_from,
        open_until=checkpoint.open_until,
    )


def ticket_of(attendee: Any, event_id: str, ticket_type: Any) -> Ticket:
    """The rules' view of an attendee; validity narrows to the ticket type's window."""
    valid_from, valid_until = attendee.valid_from, attendee.valid_until
    if ticket_type.valid_from is not None:
        valid_from = max(filter(None, (valid_from, ticket_type.valid_from)))
    if ticket_type.valid_until is not None:
        valid_until = min(filter(None, (valid_until, ticket_type.valid_until)))
    return Ticket(
        attendee_id=attendee.id,
        event_id=event_id,
        ticket_type=ticket_type.slug,
        status=AttendeeStatus(attendee.status),
        tags=frozenset(attendee.tags),
        valid_from=valid_from,
        valid_until=valid_until,
        first_name=attendee.first_name,
        last_name=attendee.last_name,
        is_vip=ticket_type.is_vip,
    )


def resolve_code(conn: Connection, event: Any, raw: str) -> Resolution:
    """SPEC section 5: exact custom code of the event, else a signed ticket, else unknown.

    `event` is the event row being scanned (id, organization_id, key_digest, ticket_public_key).
    A code or ticket of another event of the same organization resolves (to `wrong_event`).
    """
    try:
        code = normalize_code(raw)
    except MalformedCode:
        return Resolution(error=Reason.MALFORMED_CODE)
    if not is_signed_code(code):
        rows = conn.execute(_BY_CODE, {"code": code}).all()
        for attendee_id, event_id, org in sorted(rows, key=lambda r: r[1] != event.id):
            if org == event.organization_id:
                return Resolution(attendee_id=attendee_id, event_id=event_id)
        return Resolution(error=Reason.UNKNOWN_CODE)
    try:
        digest = decode_ticket(code).payload.event_digest.hex()
        owner = (
            event
            if digest == event.key_digest
            else conn.execute(_BY_DIGEST, {"digest": digest, "org": event.organization_id}).first()
        )
        if owner is None:
            return Resolution(error=Reason.INVALID_SIGNATURE)
        payload = verify_ticket(code, public_key_from_b64(owner.ticket_public_key))
    except MalformedCode:
        return Resolution(error=Reason.MALFORMED_CODE)
    except InvalidSignature:
        return Resolution(error=Reason.INVALID_SIGNATURE)
    return Resolution(attendee_id=payload.attendee_id, event_id=owner.id)


def _checkpoint_and_event(
    conn: Connection, checkpoint_id: str, organization_id: str
) -> tuple[Row[Any], Row[Any]]:
    if len(checkpoint_id) > 40:
        raise not_found("checkpoint")
    checkpoint = conn.execute(_CHECKPOINT, {"id": checkpoint_id}).first()
    event = None
    if checkpoint is not None:
        event = conn.execute(_EVENT, {"id": checkpoint.event_id}).first()
    if checkpoint is None or event is None or event.organization_id != organization_id:
        raise not_found("checkpoint")
    return checkpoint, event


def _attendee_row(conn: Connection, attendee_id: str, *, lock: bool) -> Row[Any] | None:
    return conn.execute(_ATTENDEE_LOCKED if lock else _ATTENDEE, {"id": attendee_id}).first()


@dataclass(frozen=True, slots=True)
class _TypeView:
    slug: str
    is_vip: bool
    valid_from: datetime | None
    valid_until: datetime | None


def type_view(row: Row[Any]) -> _TypeView:
    return _TypeView(row.tt_slug, row.tt_vip, row.tt_from, row.tt_until)


def _scanned(row: Row[Any]) -> ScannedAttendee:
    return ScannedAttendee(
        row.id,
        row.first_name,
        row.last_name,
        row.email,
        row.tt_slug,
        list(row.tags),
        row.tt_vip,
        row.status,
    )


def scan_online(
    session: Session, *, organization_id: str, checkpoint_id: str, request: ScanRequestData
) -> ScanOutcome:
    """Decide one scan at a checkpoint and record it; commits."""
    conn = session.connection()
    checkpoint, event = _checkpoint_and_event(conn, checkpoint_id, organization_id)
    ref = CheckpointRef(checkpoint.id, checkpoint.event_id, checkpoint.zone_id)
    try:
        direction = effective_direction(
            CheckpointDirection(checkpoint.direction), request.direction
        )
    except ValueError as exc:
        raise ApiError(
            422,
            "validation_error",
            str(exc),
            [{"field": "direction", "code": "direction", "message": str(exc)}],
        ) from exc
    if request.scan_id is not None:
        existing = conn.execute(_SCAN, {"id": request.scan_id}).first()
        if existing is not None:
            return _replayed(conn, existing, ref)
    now = utcnow()
    scanned_at = request.scanned_at or now
    found = resolve_code(conn, event, request.code)
    zone = None
    if checkpoint.zone_id:  # every scan of a zone queues here: exact occupancy, no double entry
        zone = conn.execute(_ZONE_LOCKED, {"id": checkpoint.zone_id}).first()
    row = _attendee_row(conn, found.attendee_id, lock=True) if found.attendee_id else None
    ticket = ticket_of(row, found.event_id or event.id, type_view(row)) if row else None
    history = history_from_state(row.state) if row is not None else History()
    verdict = decide(
        ScanInput(
            policy_of(checkpoint),
            now,
            direction,
            ticket=ticket,
            code_error=found.error or (None if ticket else Reason.UNKNOWN_CODE),
            history=history,
            zone=ZoneOccupancy(zone.capacity, zone.occupancy) if zone else None,
            device_id=request.device_id,
        )
    )
    scan_id = None
    if verdict.record:
        own = row is not None and row.event_id == event.id
        scan_id = request.scan_id or str(uuid.uuid4())
        record = dict(
            id=scan_id,
            event_id=event.id,
            checkpoint_id=checkpoint.id,
            zone_id=checkpoint.zone_id,
            attendee_id=row.id if own and row else None,
            code=stored_code(request.code),
            direction=direction.value,
            status=verdict.status.value,
            reason=verdict.reason.value,
            warnings=[w.value for w in verdict.warnings],
            occupancy_delta=verdict.occupancy_delta if verdict.accepted else 0,
            voided=False,
            scanned_at=scanned_at,
            ordered_at=scanned_at,
            received_at=now,
            device_id=request.device_id,
            operator=request.operator,
            offline=False,
            manual=request.manual,
            result={},
            hlc=None,
            device_status=None,
            device_reason=None,
            conflict_id=None,
        )
        try:
            conn.execute(_INSERT_SCAN, record)
        except IntegrityError:
            if request.scan_id is None:
                raise
            return _lost_race(session, request.scan_id, ref)
        if own and row is not None:
            after = history.apply(verdict.as_reading(checkpoint.id, scanned_at, request.device_id))
            entered = verdict.accepted and direction is Direction.IN
            conn.execute(
                _UPDATE_ATTENDEE,
                {
                    "b_id": row.id,
                    "b_state": history_to_state(after),
                    "b_entries": row.entries + (1 if entered else 0),
                    "b_last": scanned_at if verdict.accepted else row.last_scan_at,
                    "b_seq": bump_seq(session, event.id),
                },
            )
        if zone is not None and verdict.accepted and verdict.occupancy_delta:
            conn.execute(
                _ZONE_ADD, {"b_id": checkpoint.zone_id, "b_delta": verdict.occupancy_delta}
            )
        _announce(conn, event, record, checkpoint, row if own else None, zone)
    session.commit()
    return ScanOutcome(
        verdict, scan_id, _scanned(row) if row and verdict.attendee else None, ref, scanned_at
    )


def ticket_type_ref(row: Row[Any]) -> dict[str, Any]:
    """The ticket type of an `ATTENDEE_WITH_TYPE` row, as webhooks show it."""
    return {
        "id": row.ticket_type_id,
        "slug": row.tt_slug,
        "name": row.tt_name,
        "is_vip": row.tt_vip,
    }


def _announce(
    conn: Connection,
    event: Row[Any],
    record: dict[str, Any],
    checkpoint: Row[Any],
    row: Row[Any] | None,
    zone: Any,
) -> None:
    """Queue `checkin.*` (and `zone.capacity_reached`) webhooks in the scan's transaction."""
    subs = outbox.subscribers(conn, event.organization_id)
    kind = f"checkin.{record['status']}"
    full = (
        zone is not None
        and zone.capacity is not None
        and record["occupancy_delta"] > 0
        and zone.occupancy + record["occupancy_delta"] == zone.capacity
    )
    if not outbox.wanted(subs, kind, event.id) and not (
        full and outbox.wanted(subs, ZONE_FULL, event.id)
    ):
        return
    event_ref = {"id": event.id, "name": event.name}
    zone_ref = {"id": record["zone_id"], "name": zone.name} if zone is not None else None
    data = messages.checkin_data(
        scan=record,
        event=event_ref,
        checkpoint=checkpoint,
        zone=zone_ref,
        attendee=messages.attendee_data(row, ticket_type_ref(row)) if row is not None else None,
        device=messages.device_ref(conn, record["device_id"]),
    )
    items = [outbox.Emission(event.id, kind, data)]
    if full and zone_ref is not None:
        at = record["received_at"]
        full_data = messages.zone_full_data(event_ref, zone_ref, zone.capacity, zone.capacity, at)
        items.append(outbox.Emission(event.id, ZONE_FULL, full_data))
    outbox.emit_many(conn, subs, organization_id=event.organization_id, items=items)


def _lost_race(session: Session, scan_id: str, ref: CheckpointRef) -> ScanOutcome:
    """A retry that raced its original and lost (the id is taken): answer what the original
    answered; nothing of this attempt is kept."""
    session.rollback()
    conn = session.connection()
    existing = conn.execute(_SCAN, {"id": scan_id}).first()
    if existing is None:  # the id was not the clash
        raise ApiError(409, "conflict", "The reading could not be recorded; try again")
    return _replayed(conn, existing, ref)


def _replayed(conn: Connection, scan: Row[Any], ref: CheckpointRef) -> ScanOutcome:
    """The first answer again for a scan id that was already recorded (idempotent retries)."""
    if scan.checkpoint_id != ref.id:
        raise ApiError(409, "conflict", "This scan id was used for another reading")
    row = _attendee_row(conn, scan.attendee_id, lock=False) if scan.attendee_id else None
    summary = None
    if row is not None:
        summary = AttendeeSummary.of(ticket_of(row, scan.event_id, type_view(row)))
    verdict = Verdict(
        Status(scan.status),
        Reason(scan.reason),
        Direction(scan.direction),
        tuple(VerdictWarning(w) for w in scan.warnings),
        summary,
        scan.zone_id,
        scan.occupancy_delta,
    )
    return ScanOutcome(verdict, scan.id, _scanned(row) if row else None, ref, scan.scanned_at)
