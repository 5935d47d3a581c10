"""Device pushes: offline readings and door registrations, each idempotent by its client id.

Registrations are applied first (a walk-in's admission names the attendee it creates), each in
its own savepoint; readings then go in groups (`push_scans.ScanGroup`), one transaction each. A
crash never leaves half an item, and a retry answers `duplicate` with the first answer.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import Table, insert, select
from sqlmodel import Session

from shared import ids
from shared.conflicts import DUPLICATE_REGISTRATION
from shared.sync import (
    ItemResult,
    ItemStatus,
    PushEnvelope,
    RegistrationItem,
    WireError,
    decode_item,
    to_builtins,
)
from sync_server.db import utcnow
from sync_server.models import Attendee, DoorRegistration
from sync_server.models.people import AttendeeCreate, AttendeeSource
from sync_server.services.attendees import create_attendee_row
from sync_server.services.conflicts import open_conflict
from sync_server.services.push_items import (
    PushContext,
    duplicate_of,
    raw_id,
    rejected,
    wire_error,
)
from sync_server.services.push_scans import ScanGroup
from sync_server.webhooks import outbox

__all__ = ["GROUP_SIZE", "PushContext", "push_batch"]

GROUP_SIZE = 1000
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
REGISTRATIONS: Table = DoorRegistration.__table__  # type: ignore[assignment]


def push_batch(session: Session, ctx: PushContext, request: PushEnvelope) -> list[ItemResult]:
    """Apply every item of a batch; registrations first, so walk-ins' admissions resolve."""
    if request.registrations:
        ctx.subs = outbox.subscribers(session.connection(), ctx.organization_id)
    results = [_apply_registration(session, ctx, raw) for raw in request.registrations]
    session.commit()
    for start in range(0, len(request.scans), GROUP_SIZE):
        ctx.subs = outbox.subscribers(session.connection(), ctx.organization_id)
        results += ScanGroup(session, ctx, request.scans[start : start + GROUP_SIZE]).apply()
        session.commit()
    return results


def _apply_registration(session: Session, ctx: PushContext, raw: msgspec.Raw) -> ItemResult:
    conn = session.connection()
    try:
        item = decode_item(raw, RegistrationItem)
    except WireError as exc:
        return rejected(raw_id(raw), wire_error(exc))
    known = conn.execute(
        select(REGISTRATIONS.c.event_id, REGISTRATIONS.c.result).where(
            REGISTRATIONS.c.id == item.id
        )
    ).first()
    if known is not None:
        if ctx.event(conn, known.event_id) is None:
            return rejected(item.id, "this id is already used")
        return duplicate_of(known.result)
    event = ctx.event(conn, item.event_id)
    if event is None:
        return rejected(item.id, "unknown event")
    attendee_id = ids.registration_attendee_id(item.id)
    email = item.email.strip().lower() if item.email else None
    existing = None
    if email:
        existing = conn.execute(
            select(ATTENDEES.c.id).where(
                ATTENDEES.c.event_id == event.id, ATTENDEES.c.email_norm == email
            )
        ).first()
    if existing is not None:
        conflict_id = open_conflict(
            conn,
            organization_id=ctx.organization_id,
            event_id=event.id,
            kind=DUPLICATE_REGISTRATION,
            scan_ids=[],
            attendee_ids=[existing.id],
            registration_id=item.id,
            subs=ctx.subs,
            details={
                "device_id": ctx.device_id,
                "email": item.email,
                "first_name": item.first_name,
                "last_name": item.last_name,
            },
        )
        result = ItemResult(
            id=item.id,
            status=ItemStatus.APPLIED,
            conflict_id=conflict_id,
            attendee_id=existing.id,
        )
    else:
        error = _create_walk_in(session, ctx, event.id, item, attendee_id)
        if error is not None:
            return rejected(item.id, error)
        result = ItemResult(id=item.id, status=ItemStatus.APPLIED, attendee_id=attendee_id)
    conn.execute(
        insert(REGISTRATIONS).values(
            id=item.id,
            event_id=event.id,
            device_id=ctx.device_id,
            attendee_id=result.attendee_id,
            payload=to_builtins(item),
            result=to_builtins(result),
            created_at=item.created_at,
            received_at=utcnow(),
        )
    )
    return result


def _create_walk_in(
    session: Session, ctx: PushContext, event_id: str, item: RegistrationItem, attendee_id: str
) -> str | None:
    from pydantic import ValidationError

    try:
        data = AttendeeCreate(
            first_name=item.first_name,
            last_name=item.last_name,
            email=item.email,
            ticket_type=item.ticket_type,
            tags=item.tags,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid')}"
    return create_attendee_row(
        session,
        event_id=event_id,
        data=data,
        source=AttendeeSource.DOOR,
        secret=ctx.secret,
        attendee_id=attendee_id,
        subs=ctx.subs,
    )
