"""Online scans: resolve the code (custom code, then signed `DC1`), decide with `shared.decide` on
the attendee's folded history and the zone's occupancy, and record the reading, in one
transaction that is safe when two gates scan the same ticket at once.

This is the hottest path of the server, so it speaks SQLAlchemy Core: a handful of statements,
no unit-of-work flush.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared.denials import DenialDetailJSON
from shared.history import history_from_state, history_to_state
from shared.resolution import read_code, resolve
from shared.rules import (
    AttendeeSummary,
    CheckpointDirection,
    Direction,
    History,
    Reason,
    ScanInput,
    Status,
    Verdict,
    VerdictWarning,
    WrongDirection,
    ZoneOccupancy,
    checkpoint_policy,
    decide,
    effective_direction,
    zone_filled,
)
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import Attendee, Checkpoint, Event, Scan, Zone
from sync_server.services.events import bump_seq
from sync_server.services.lookups import (
    ATTENDEE_WITH_TYPE,
    online_lookups,
    row_ticket,
    ticket_type_ref,
)
from sync_server.services.timeline import UPDATE_ATTENDEE
from sync_server.webhooks import messages, outbox

__all__ = [
    "CheckpointRef",
    "ScanOutcome",
    "ScanRequestData",
    "ScannedAttendee",
    "scan_online",
    "stored_code",
]

ZONE_FULL = "zone.capacity_reached"
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_STORED_CODE = 512

EVENTS: Table = Event.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
SCANS: Table = Scan.__table__  # type: ignore[assignment]

# Statements built once: constructing SQLAlchemy expressions per scan cost more than running them.
_CHECKPOINT = select(CHECKPOINTS).where(CHECKPOINTS.c.id == bindparam("id"))
_EVENT_COLUMNS = ("id", "organization_id", "key_digest", "ticket_public_key", "name", "gate_email")
_EVENT = select(*(EVENTS.c[name] for name in _EVENT_COLUMNS)).where(EVENTS.c.id == bindparam("id"))
_SCAN = select(SCANS).where(SCANS.c.id == bindparam("id"))
_ZONE_LOCKED = (
    select(ZONES.c.capacity, ZONES.c.occupancy, ZONES.c.name)
    .where(ZONES.c.id == bindparam("id"))
    .with_for_update()
)
_ATTENDEE = ATTENDEE_WITH_TYPE.where(ATTENDEES.c.id == bindparam("id"))
_ATTENDEE_LOCKED = _ATTENDEE.with_for_update(of=ATTENDEES)
_INSERT_SCAN = insert(SCANS)
_ZONE_ADD = (
    update(ZONES)
    .where(ZONES.c.id == bindparam("b_id"))
    .values(occupancy=ZONES.c.occupancy + bindparam("b_delta"))
)


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
    session: Session,
    *,
    organization_id: str,
    checkpoint_id: str,
    request: ScanRequestData,
    before_commit: Callable[[ScanOutcome], None] | None = None,
) -> ScanOutcome:
    """Decide one scan at a checkpoint and record it; commits (`before_commit` sees the outcome
    inside the transaction, e.g. to keep the answer under an `Idempotency-Key`). A device (not
    an API key) sees the attendee's email only when the event's `gate_email` is on, as in its
    pulls."""
    conn = session.connection()
    checkpoint, event = _checkpoint_and_event(conn, checkpoint_id, organization_id)

    def shown(outcome: ScanOutcome) -> ScanOutcome:
        if outcome.attendee is not None and request.device_id is not None and not event.gate_email:
            return replace(outcome, attendee=replace(outcome.attendee, email=None))
        return outcome

    def committing(outcome: ScanOutcome) -> None:
        if before_commit is not None:
            before_commit(shown(outcome))

    return shown(_scan(session, checkpoint, event, request, committing))


def _scan(
    session: Session,
    checkpoint: Row[Any],
    event: Row[Any],
    request: ScanRequestData,
    before_commit: Callable[[ScanOutcome], None],
) -> ScanOutcome:
    conn = session.connection()
    ref = CheckpointRef(checkpoint.id, checkpoint.event_id, checkpoint.zone_id)
    try:
        direction = effective_direction(
            CheckpointDirection(checkpoint.direction), request.direction
        )
    except WrongDirection as exc:
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
    found = resolve(
        read_code(request.code, manual=request.manual), event.id, online_lookups(conn, event)
    )
    zone = None
    if checkpoint.zone_id:  # every scan of a zone queues here: exact occupancy, no double entry
        zone = conn.execute(_ZONE_LOCKED, {"id": checkpoint.zone_id}).first()
    row = _attendee_row(conn, found.attendee_id, lock=True) if found.attendee_id else None
    ticket = row_ticket(row) if row is not None else None
    history = history_from_state(row.state) if row is not None else History()
    asked = ScanInput(
        checkpoint_policy(checkpoint),
        now,
        direction,
        ticket=ticket,
        code_error=found.error or (None if ticket else Reason.UNKNOWN_CODE),
        history=history,
        zone=ZoneOccupancy(zone.capacity, zone.occupancy) if zone else None,
        device_id=request.device_id,
        code=found.code,
    )
    verdict = _named(conn, event.id, decide(asked), asked)
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
            result=_first_answer(verdict),
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
            conn.execute(
                UPDATE_ATTENDEE,
                {
                    "b_id": row.id,
                    "b_state": history_to_state(after),
                    "b_entries": after.entries,
                    "b_last": after.last_scan_at,
                    "b_seq": bump_seq(session, event.id),
                },
            )
        if zone is not None and verdict.accepted and verdict.occupancy_delta:
            conn.execute(
                _ZONE_ADD, {"b_id": checkpoint.zone_id, "b_delta": verdict.occupancy_delta}
            )
        _announce(conn, event, record, checkpoint, row if own else None, zone)
    outcome = ScanOutcome(
        verdict, scan_id, _scanned(row) if row and verdict.attendee else None, ref, scanned_at
    )
    before_commit(outcome)
    session.commit()
    return outcome


_EVENT_CHECKPOINTS = select(CHECKPOINTS).where(CHECKPOINTS.c.event_id == bindparam("event_id"))


def _named(conn: Connection, event_id: str, verdict: Verdict, asked: ScanInput) -> Verdict:
    """A denial's detail with the checkpoints it names: where else a refused ticket type is
    accepted (the event's checkpoints are read only then), and their names."""
    if verdict.detail is None or not (
        verdict.detail.via_checkpoint_id or verdict.reason is Reason.TICKET_TYPE_NOT_ALLOWED
    ):
        return verdict
    rows = conn.execute(_EVENT_CHECKPOINTS, {"event_id": event_id}).all()
    if verdict.reason is Reason.TICKET_TYPE_NOT_ALLOWED:
        verdict = decide(replace(asked, checkpoints=tuple(checkpoint_policy(r) for r in rows)))
    assert verdict.detail is not None
    return replace(verdict, detail=verdict.detail.named({r.id: r.name for r in rows}))


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
    full = zone is not None and zone_filled(
        zone.occupancy, record["occupancy_delta"], zone.capacity
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


def _first_answer(verdict: Verdict) -> dict[str, Any]:
    """What an online scan keeps of its answer beyond its row: a denial's detail."""
    if verdict.detail is None:
        return {}
    return {"detail": DenialDetailJSON.of(verdict.detail).model_dump(mode="json")}


def _replayed(conn: Connection, scan: Row[Any], ref: CheckpointRef) -> ScanOutcome:
    """The first answer again for a scan id that was already recorded (idempotent retries)."""
    if scan.checkpoint_id != ref.id:
        raise ApiError(409, "conflict", "This scan id was used for another reading")
    row = _attendee_row(conn, scan.attendee_id, lock=False) if scan.attendee_id else None
    summary = None
    if row is not None:
        summary = AttendeeSummary.of(row_ticket(row))
    kept = (scan.result or {}).get("detail")
    detail = DenialDetailJSON.model_validate(kept).detail() if kept else None
    verdict = Verdict(
        Status(scan.status),
        Reason(scan.reason),
        Direction(scan.direction),
        tuple(VerdictWarning(w) for w in scan.warnings),
        summary,
        scan.zone_id,
        scan.occupancy_delta,
        inside_since=detail.inside_since if detail else None,
        via_checkpoint_id=detail.via_checkpoint_id if detail else None,
        detail=detail,
    )
    return ScanOutcome(verdict, scan.id, _scanned(row) if row else None, ref, scan.scanned_at)
