"""Online scans: resolve the code (custom code, then signed `DC1`), decide with `shared.decide` on
the attendee's folded history and the zone's occupancy, and record the reading, in one
transaction that is safe when two gates scan the same ticket at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from shared.rules import (
    AttendeeStatus,
    AttendeeSummary,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
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

__all__ = ["Resolution", "ScanOutcome", "ScanRequestData", "policy_of", "resolve_code", "scan_online"]

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_STORED_CODE = 512


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
class ScanOutcome:
    verdict: Verdict
    scan: Scan | None
    attendee: Attendee | None
    ticket_type: TicketType | None
    checkpoint: Checkpoint
    scanned_at: datetime


def stored_code(raw: str) -> str:
    """The scanned text as the log keeps it: printable, at most 512 characters."""
    return _UNPRINTABLE.sub("\ufffd", raw[:MAX_STORED_CODE])


def policy_of(checkpoint: Checkpoint) -> CheckpointPolicy:
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


def ticket_of(attendee: Attendee, event_id: str, ticket_type: TicketType) -> Ticket:
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


def resolve_code(session: Session, event: Event, raw: str) -> Resolution:
    """SPEC section 5: exact custom code of the event, else a signed ticket, else unknown."""
    try:
        code = normalize_code(raw)
    except MalformedCode:
        return Resolution(error=Reason.MALFORMED_CODE)
    if not is_signed_code(code):
        rows = session.exec(
            select(Attendee.id, Attendee.event_id, Event.organization_id)
            .join(Event, col(Event.id) == col(Attendee.event_id))
            .where(Attendee.code == code)
        ).all()
        for attendee_id, event_id, org in sorted(rows, key=lambda r: r[1] != event.id):
            if org == event.organization_id:
                return Resolution(attendee_id=attendee_id, event_id=event_id)
        return Resolution(error=Reason.UNKNOWN_CODE)
    try:
        digest = decode_ticket(code).payload.event_digest.hex()
        owner = event if digest == event.key_digest else session.exec(
            select(Event).where(Event.key_digest == digest,
                                Event.organization_id == event.organization_id)
        ).first()
        if owner is None:
            return Resolution(error=Reason.INVALID_SIGNATURE)
        payload = verify_ticket(code, public_key_from_b64(owner.ticket_public_key))
    except MalformedCode:
        return Resolution(error=Reason.MALFORMED_CODE)
    except InvalidSignature:
        return Resolution(error=Reason.INVALID_SIGNATURE)
    return Resolution(attendee_id=payload.attendee_id, event_id=owner.id)


def _locked(session: Session, model: type[Zone] | type[Attendee], row_id: str) -> Zone | Attendee | None:
    query = select(model).where(col(model.id) == row_id).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).first()


def scan_online(
    session: Session, *, organization_id: str, checkpoint_id: str, request: ScanRequestData
) -> ScanOutcome:
    """Decide one scan at a checkpoint and record it; commits."""
    checkpoint = session.get(Checkpoint, checkpoint_id) if len(checkpoint_id) <= 40 else None
    event = session.get(Event, checkpoint.event_id) if checkpoint else None
    if checkpoint is None or event is None or event.organization_id != organization_id:
        raise not_found("checkpoint")
    try:
        direction = effective_direction(CheckpointDirection(checkpoint.direction), request.direction)
    except ValueError as exc:
        raise ApiError(422, "validation_error", str(exc),
                       [{"field": "direction", "code": "direction", "message": str(exc)}]) from exc
    now = utcnow()
    scanned_at = request.scanned_at or now
    if request.scan_id is not None:
        existing = session.get(Scan, request.scan_id)
        if existing is not None:
            return _replayed(session, existing, checkpoint)
    found = resolve_code(session, event, request.code)
    zone = _locked(session, Zone, checkpoint.zone_id) if checkpoint.zone_id else None
    attendee = _locked(session, Attendee, found.attendee_id) if found.attendee_id else None
    ticket_type = session.get(TicketType, attendee.ticket_type_id) if isinstance(attendee, Attendee) else None
    assert zone is None or isinstance(zone, Zone)
    ticket = None
    if isinstance(attendee, Attendee) and ticket_type is not None:
        ticket = ticket_of(attendee, found.event_id or event.id, ticket_type)
    code_error = found.error or (Reason.UNKNOWN_CODE if ticket is None else None)
    history = history_from_state(attendee.state) if isinstance(attendee, Attendee) else None
    verdict = decide(
        ScanInput(
            policy_of(checkpoint),
            now,
            direction,
            ticket=ticket,
            code_error=code_error,
            history=history or history_from_state({}),
            zone=ZoneOccupancy(zone.capacity, zone.occupancy) if zone else None,
            device_id=request.device_id,
        )
    )
    scan = None
    if verdict.record:
        scan = Scan(
            id=request.scan_id or str(uuid.uuid4()),
            event_id=event.id,
            checkpoint_id=checkpoint.id,
            zone_id=checkpoint.zone_id,
            attendee_id=ticket.attendee_id if ticket and ticket.event_id == event.id else None,
            code=stored_code(request.code),
            direction=direction,
            status=verdict.status,
            reason=verdict.reason,
            warnings=list(verdict.warnings),
            occupancy_delta=verdict.occupancy_delta if verdict.accepted else 0,
            scanned_at=scanned_at,
            received_at=now,
            device_id=request.device_id,
            operator=request.operator,
            manual=request.manual,
        )
        session.add(scan)
        if isinstance(attendee, Attendee) and scan.attendee_id and history is not None:
            after = history.apply(verdict.as_reading(checkpoint.id, scanned_at, request.device_id))
            attendee.state = history_to_state(after)
            if verdict.accepted:
                attendee.entries += 1 if direction is Direction.IN else 0
                attendee.last_scan_at = scanned_at
            attendee.seq = bump_seq(session, event.id)
            session.add(attendee)
        if zone is not None and verdict.accepted and verdict.occupancy_delta:
            zone.occupancy += verdict.occupancy_delta
            session.add(zone)
    session.commit()
    return ScanOutcome(verdict, scan, attendee if isinstance(attendee, Attendee) else None,
                       ticket_type, checkpoint, scanned_at)


def _replayed(session: Session, scan: Scan, checkpoint: Checkpoint) -> ScanOutcome:
    """The first answer again for a scan id that was already recorded (idempotent retries)."""
    if scan.checkpoint_id != checkpoint.id:
        raise ApiError(409, "conflict", "This scan id was used for another reading")
    attendee = session.get(Attendee, scan.attendee_id) if scan.attendee_id else None
    ticket_type = session.get(TicketType, attendee.ticket_type_id) if attendee else None
    summary = None
    if attendee is not None and ticket_type is not None:
        summary = AttendeeSummary.of(ticket_of(attendee, scan.event_id, ticket_type))
    verdict = Verdict(
        Status(scan.status), Reason(scan.reason), Direction(scan.direction),
        tuple(VerdictWarning(w) for w in scan.warnings), summary, scan.zone_id,
        scan.occupancy_delta,
    )
    return ScanOutcome(verdict, scan, attendee, ticket_type, checkpoint, scan.scanned_at)
