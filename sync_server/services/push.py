"""Device pushes: offline readings and door registrations, each idempotent by its client id.

Offline readings are facts: a person a device admitted is inside, whatever the rules say now. The
server records the reading, decides it again with `shared.decide` on the attendee's timeline
before it, re-folds the timeline, and opens a conflict when the device admitted someone the
server would have denied. Items commit in small groups, so a crash never leaves half an item.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Table, insert, select
from sqlmodel import Session

from shared import ids
from shared.rules import (
    AttendeeStatus,
    CheckpointDirection,
    Direction,
    History,
    Reason,
    ScanInput,
    Status,
    ZoneOccupancy,
    decide,
    effective_direction,
    replay,
)
from shared.sync import ItemStatus, PushRequest, RegistrationItem, ScanItem
from sync_server.db import utcnow
from sync_server.models import Attendee, Checkpoint, DoorRegistration, Event, Scan, Zone
from sync_server.models.people import AttendeeCreate, AttendeeSource
from sync_server.services.attendees import create_attendee_row
from sync_server.services.conflicts import open_conflict
from sync_server.services.events import bump_seq
from sync_server.services.scanning import (
    Resolution,
    _attendee_row,
    _type_view,
    policy_of,
    resolve_code,
    stored_code,
    ticket_of,
)
from sync_server.services.timeline import reading_of, refold_attendee, timeline

__all__ = ["GROUP_SIZE", "PushContext", "push_batch", "registration_attendee_id"]

GROUP_SIZE = 250
SCANS: Table = Scan.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
REGISTRATIONS: Table = DoorRegistration.__table__  # type: ignore[assignment]


@dataclass
class PushContext:
    organization_id: str
    device_id: str
    clock_offset_ms: int
    secret: bytes
    events: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)


def registration_attendee_id(registration_id: str) -> str:
    """The attendee id a door registration becomes, known to the device before any sync."""
    try:
        raw = uuid.UUID(registration_id).bytes
    except ValueError:
        raw = hashlib.sha256(registration_id.encode()).digest()[:16]
    return ids.make_id(ids.ATTENDEE, raw)


def _result(item_id: str, status: ItemStatus, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "status": status.value, "server_verdict": None, "conflict_id": None,
            "attendee_id": None, "error": None, **extra}


def _rejected(item_id: Any, error: str) -> dict[str, Any]:
    return _result(str(item_id)[:64] if item_id is not None else "", ItemStatus.REJECTED, error=error)


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"[:300]


def _event(conn: Connection, ctx: PushContext, event_id: str) -> Any:
    if event_id not in ctx.events:
        ctx.events[event_id] = conn.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
    row = ctx.events[event_id]
    return row if row is not None and row.organization_id == ctx.organization_id else None


def _checkpoint(conn: Connection, ctx: PushContext, checkpoint_id: str) -> Any:
    if checkpoint_id not in ctx.checkpoints:
        ctx.checkpoints[checkpoint_id] = conn.execute(
            select(CHECKPOINTS).where(CHECKPOINTS.c.id == checkpoint_id)).first()
    return ctx.checkpoints[checkpoint_id]


def push_batch(session: Session, ctx: PushContext, request: PushRequest) -> list[dict[str, Any]]:
    """Apply every item of a batch; registrations first, so walk-ins' admissions resolve."""
    results: list[dict[str, Any]] = []
    items = [(apply_registration, raw) for raw in request.registrations]
    items += [(apply_scan, raw) for raw in request.scans]
    for start in range(0, len(items), GROUP_SIZE):
        group = items[start : start + GROUP_SIZE]
        conn = session.connection()
        results += [apply(conn, session, ctx, raw) for apply, raw in group]
        session.commit()
    return results


def _existing_scan(conn: Connection, ctx: PushContext, scan_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(SCANS.c.id, SCANS.c.event_id, SCANS.c.result)
                       .where(SCANS.c.id == scan_id)).first()
    if row is None:
        return None
    if _event(conn, ctx, row.event_id) is None:
        return _rejected(scan_id, "this id is already used")
    return {**(row.result or {}), "id": scan_id, "status": ItemStatus.DUPLICATE.value}


def _resolve(conn: Connection, event: Any, item: ScanItem) -> Resolution:
    if item.manual and item.code.startswith(f"{ids.ATTENDEE}_"):
        found = conn.execute(select(ATTENDEES.c.id).where(
            ATTENDEES.c.id == item.code, ATTENDEES.c.event_id == event.id)).first()
        if found is not None:
            return Resolution(attendee_id=found.id, event_id=event.id)
    return resolve_code(conn, event, item.code)


def apply_scan(conn: Connection, session: Session, ctx: PushContext, raw: Any) -> dict[str, Any]:
    try:
        item = ScanItem.model_validate(raw)
    except ValidationError as exc:
        return _rejected(raw.get("id") if isinstance(raw, dict) else None, _short(exc))
    duplicate = _existing_scan(conn, ctx, item.id)
    if duplicate is not None:
        return duplicate
    event = _event(conn, ctx, item.event_id)
    checkpoint = _checkpoint(conn, ctx, item.checkpoint_id)
    if event is None or checkpoint is None or checkpoint.event_id != event.id:
        return _rejected(item.id, "unknown event or checkpoint")
    try:
        direction = effective_direction(CheckpointDirection(checkpoint.direction), item.direction)
    except ValueError as exc:
        return _rejected(item.id, str(exc))
    found = _resolve(conn, event, item)
    row = _attendee_row(conn, found.attendee_id, lock=True) if found.attendee_id else None
    own = row is not None and row.event_id == event.id
    ordered_at = item.scanned_at - timedelta(milliseconds=ctx.clock_offset_ms)
    verdict = _server_verdict(conn, checkpoint, direction, row, found, ordered_at, ctx.device_id)
    admitted = item.device_verdict.status is Status.ACCEPTED
    recorded = Status.ACCEPTED if admitted else Status.DENIED
    now = utcnow()
    conn.execute(insert(SCANS).values(
        id=item.id, event_id=event.id, checkpoint_id=checkpoint.id, zone_id=checkpoint.zone_id,
        attendee_id=row.id if own and row else None, code=stored_code(item.code),
        direction=direction.value, status=recorded.value,
        reason=Reason.OK.value if admitted else item.device_verdict.reason.value,
        warnings=list(verdict.warnings) if admitted else [], occupancy_delta=0, voided=False,
        scanned_at=item.scanned_at, ordered_at=ordered_at, received_at=now,
        device_id=ctx.device_id, operator=item.operator, offline=True, manual=item.manual,
        hlc=item.hlc, device_status=item.device_verdict.status.value,
        device_reason=item.device_verdict.reason.value, result={},
    ))
    conflict_id = None
    if admitted and not verdict.accepted and verdict.reason is not Reason.DUPLICATE_SCAN:
        related = _related_reading(conn, row.id, checkpoint.zone_id, item.id) if own and row else None
        conflict_id = open_conflict(
            conn, organization_id=ctx.organization_id, event_id=event.id,
            kind=verdict.reason.value, scan_ids=[item.id, *([related] if related else [])],
            attendee_ids=[row.id] if own and row else [],
            details={"device_id": ctx.device_id, "checkpoint_id": checkpoint.id,
                     "server_reason": verdict.reason.value, "scanned_at": item.scanned_at.isoformat()},
        )
    if own and row is not None:
        refold_attendee(conn, row.id, seq=bump_seq(session, event.id))
    result = _result(item.id, ItemStatus.APPLIED, conflict_id=conflict_id,
                     attendee_id=row.id if own and row else None,
                     server_verdict={"status": verdict.status.value, "reason": verdict.reason.value,
                                     "warnings": [w.value for w in verdict.warnings]})
    conn.execute(SCANS.update().where(SCANS.c.id == item.id).values(result=result, conflict_id=conflict_id))
    return result


def _server_verdict(conn: Connection, checkpoint: Any, direction: Direction, row: Any,
                    found: Resolution, at: datetime, device_id: str) -> Any:
    """What the server would have answered at `at`, knowing every reading before it."""
    ticket = ticket_of(row, found.event_id or checkpoint.event_id, _type_view(row)) if row else None
    if ticket is not None and ticket.status is not AttendeeStatus.VALID:
        changed = row.status_changed_at
        if changed is not None and changed > at:  # revoked or cancelled only after this scan
            ticket = replace(ticket, status=AttendeeStatus.VALID)
    history = History()
    if row is not None:
        before = [r for r in timeline(conn, row.id) if (r.ordered_at or r.scanned_at) <= at]
        history = replay(reading_of(r) for r in before)
    zone = None
    if checkpoint.zone_id:
        z = conn.execute(select(ZONES.c.capacity, ZONES.c.occupancy)
                         .where(ZONES.c.id == checkpoint.zone_id).with_for_update()).first()
        zone = ZoneOccupancy(z.capacity, z.occupancy) if z else None
    return decide(ScanInput(
        policy_of(checkpoint), at, direction, ticket=ticket,
        code_error=found.error or (None if ticket else Reason.UNKNOWN_CODE), history=history,
        zone=zone, device_id=None,
    ))


def _related_reading(conn: Connection, attendee_id: str, zone_id: str | None, scan_id: str) -> str | None:
    """The reading that put the attendee where the new one collides with (last accepted entry)."""
    entries = [r for r in timeline(conn, attendee_id)
               if r.id != scan_id and r.status == Status.ACCEPTED and r.direction == Direction.IN
               and r.zone_id == zone_id]
    return entries[-1].id if entries else None


def apply_registration(conn: Connection, session: Session, ctx: PushContext, raw: Any) -> dict[str, Any]:
    try:
        item = RegistrationItem.model_validate(raw)
    except ValidationError as exc:
        return _rejected(raw.get("id") if isinstance(raw, dict) else None, _short(exc))
    known = conn.execute(select(REGISTRATIONS.c.event_id, REGISTRATIONS.c.result)
                         .where(REGISTRATIONS.c.id == item.id)).first()
    if known is not None:
        if _event(conn, ctx, known.event_id) is None:
            return _rejected(item.id, "this id is already used")
        return {**known.result, "status": ItemStatus.DUPLICATE.value}
    event = _event(conn, ctx, item.event_id)
    if event is None:
        return _rejected(item.id, "unknown event")
    attendee_id = registration_attendee_id(item.id)
    email = item.email.strip().lower() if item.email else None
    existing = None
    if email:
        existing = conn.execute(select(ATTENDEES.c.id).where(
            ATTENDEES.c.event_id == event.id, ATTENDEES.c.email_norm == email)).first()
    conflict_id = None
    if existing is not None:
        conflict_id = open_conflict(
            conn, organization_id=ctx.organization_id, event_id=event.id,
            kind="duplicate_registration", scan_ids=[], attendee_ids=[existing.id],
            registration_id=item.id,
            details={"device_id": ctx.device_id, "email": item.email,
                     "first_name": item.first_name, "last_name": item.last_name},
        )
        result = _result(item.id, ItemStatus.APPLIED, conflict_id=conflict_id,
                         attendee_id=existing.id)
    else:
        try:
            data = AttendeeCreate(first_name=item.first_name, last_name=item.last_name,
                                  email=item.email, ticket_type=item.ticket_type, tags=item.tags)
        except ValidationError as exc:
            return _rejected(item.id, _short(exc))
        error = create_attendee_row(session, event_id=event.id, data=data, source=AttendeeSource.DOOR,
                                    secret=ctx.secret, attendee_id=attendee_id)
        if error is not None:
            return _rejected(item.id, error)
        result = _result(item.id, ItemStatus.APPLIED, attendee_id=attendee_id)
    conn.execute(insert(REGISTRATIONS).values(
        id=item.id, event_id=event.id, device_id=ctx.device_id, attendee_id=result["attendee_id"],
        payload=item.model_dump(mode="json"), result=result, created_at=item.created_at,
        received_at=utcnow()))
    return result


