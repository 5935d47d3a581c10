"""Sync conflicts: opened when a device admitted someone the server would have denied, or a door
registration duplicates an attendee; resolved by an admin with `accept`, `void_scan`,
`revoke_ticket` or `merge`, recording who, when and why.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update
from sqlmodel import Session

from shared import ids
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Attendee, Conflict, DoorRegistration, Scan, Zone
from sync_server.models.base import new_id
from sync_server.services.events import bump_seq
from sync_server.services.timeline import refold_attendee
from sync_server.webhooks import messages, outbox

__all__ = ["Resolution", "open_conflict", "resolve_conflict"]

CONFLICTS: Table = Conflict.__table__  # type: ignore[assignment]
SCANS: Table = Scan.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
REGISTRATIONS: Table = DoorRegistration.__table__  # type: ignore[assignment]


class Resolution(StrEnum):
    ACCEPT = "accept"
    VOID_SCAN = "void_scan"
    REVOKE_TICKET = "revoke_ticket"
    MERGE = "merge"


REGISTRATION_KINDS = frozenset({"duplicate_registration"})


def open_conflict(
    conn: Connection,
    *,
    organization_id: str,
    event_id: str,
    kind: str,
    scan_ids: list[str],
    attendee_ids: list[str],
    details: dict[str, Any],
    registration_id: str | None = None,
    subs: list[outbox.Subscriber] | None = None,
) -> str:
    """Record an open conflict and queue `conflict.detected`, in the caller's transaction."""
    conflict_id = new_id(ids.CONFLICT)
    row = dict(
        id=conflict_id,
        organization_id=organization_id,
        event_id=event_id,
        kind=kind,
        status="open",
        scan_ids=scan_ids,
        attendee_ids=attendee_ids,
        registration_id=registration_id,
        details=details,
        created_at=utcnow(),
    )
    conn.execute(insert(CONFLICTS).values(row))
    _announce(conn, organization_id, "conflict.detected", row, subs)
    return conflict_id


def _announce(
    conn: Connection,
    organization_id: str,
    type: str,
    row: dict[str, Any],
    subs: list[outbox.Subscriber] | None = None,
) -> None:
    if subs is None:
        subs = outbox.subscribers(conn, organization_id)
    if outbox.wanted(subs, type, row["event_id"]):
        data = messages.conflict_data(row, messages.event_ref(conn, row["event_id"]))
        outbox.emit(
            conn,
            organization_id=organization_id,
            event_id=row["event_id"],
            type=type,
            data=data,
            subs=subs,
        )


def _allowed(kind: str) -> set[Resolution]:
    if kind in REGISTRATION_KINDS:
        return {Resolution.ACCEPT, Resolution.MERGE}
    return {Resolution.ACCEPT, Resolution.VOID_SCAN, Resolution.REVOKE_TICKET}


def resolve_conflict(
    session: Session, *, conflict: Conflict, resolution: Resolution, resolver: str, note: str | None
) -> Conflict:
    """Apply an admin's decision; resolving twice is a 409."""
    conn = session.connection()
    locked = conn.execute(
        select(CONFLICTS.c.status).where(CONFLICTS.c.id == conflict.id).with_for_update()
    ).first()
    if locked is None or locked.status != "open":
        raise ApiError(409, "conflict", "This conflict is already resolved")
    if resolution not in _allowed(conflict.kind):
        allowed = ", ".join(sorted(r.value for r in _allowed(conflict.kind)))
        raise ApiError(
            422,
            "validation_error",
            f"{conflict.kind} conflicts take: {allowed}",
            [{"field": "resolution", "code": "not_allowed", "message": allowed}],
        )
    if resolution is Resolution.VOID_SCAN and conflict.scan_ids:
        _void(session, conflict.event_id, conflict.scan_ids[0])
    elif resolution is Resolution.REVOKE_TICKET:
        _revoke(session, conflict)
    elif resolution is Resolution.MERGE and conflict.registration_id:
        _merge_registration(session, conflict)
    conflict.status = "resolved"
    conflict.resolution = resolution.value
    conflict.resolved_by = resolver[:200]
    conflict.resolved_at = utcnow()
    conflict.note = (note or "")[:2000] or None
    session.add(conflict)
    _announce(conn, conflict.organization_id, "conflict.resolved", conflict.model_dump())
    session.commit()
    return conflict


def _revoke(session: Session, conflict: Conflict) -> None:
    """The conflict's tickets stop admitting; each one that was not revoked yet is announced as
    `attendee.status_changed`, like a status change through the API."""
    conn = session.connection()
    before = conn.execute(
        select(ATTENDEES)
        .where(ATTENDEES.c.id.in_(conflict.attendee_ids), ATTENDEES.c.status != "revoked")
        .with_for_update()
    ).all()
    if not before:
        return
    now = utcnow()
    for row in before:  # each row its own sequence number, as pulls page by it
        conn.execute(
            update(ATTENDEES)
            .where(ATTENDEES.c.id == row.id)
            .values(
                status="revoked",
                status_changed_at=now,
                updated_at=now,
                seq=bump_seq(session, conflict.event_id),
            )
        )
    subs = outbox.subscribers(conn, conflict.organization_id)
    if not outbox.wanted(subs, "attendee.status_changed", conflict.event_id):
        return
    event = messages.event_ref(conn, conflict.event_id)
    types = messages.ticket_type_refs(conn, {row.ticket_type_id for row in before})
    items = [
        outbox.Emission(
            conflict.event_id,
            "attendee.status_changed",
            {
                "event": event,
                "attendee": messages.attendee_data(
                    {**row._asdict(), "status": "revoked"}, types.get(row.ticket_type_id, {})
                ),
                "previous_status": row.status,
            },
        )
        for row in before
    ]
    outbox.emit_many(conn, subs, organization_id=conflict.organization_id, items=items)


def _void(session: Session, event_id: str, scan_id: str) -> None:
    """The reading stops counting: occupancy, entries and presence are re-decided without it."""
    conn = session.connection()
    scan = conn.execute(
        select(SCANS.c.attendee_id, SCANS.c.zone_id, SCANS.c.occupancy_delta, SCANS.c.voided).where(
            SCANS.c.id == scan_id
        )
    ).first()
    if scan is None or scan.voided:
        return
    conn.execute(update(SCANS).where(SCANS.c.id == scan_id).values(voided=True, occupancy_delta=0))
    if scan.zone_id and scan.occupancy_delta:
        conn.execute(
            update(ZONES)
            .where(ZONES.c.id == scan.zone_id)
            .values(occupancy=ZONES.c.occupancy - scan.occupancy_delta)
        )
    if scan.attendee_id:
        conn.execute(
            select(ATTENDEES.c.id).where(ATTENDEES.c.id == scan.attendee_id).with_for_update()
        )
        refold_attendee(conn, scan.attendee_id, seq=bump_seq(session, event_id))


def _merge_registration(session: Session, conflict: Conflict) -> None:
    """The walk-in is the existing attendee: their door readings move over to that attendee."""
    from sync_server.services.push import registration_attendee_id

    conn = session.connection()
    target = conflict.attendee_ids[0] if conflict.attendee_ids else None
    if target is None or conflict.registration_id is None:
        return
    walk_in = registration_attendee_id(conflict.registration_id)
    conn.execute(
        update(SCANS)
        .where(
            SCANS.c.code == walk_in,
            SCANS.c.attendee_id.is_(None),
            SCANS.c.event_id == conflict.event_id,
        )
        .values(attendee_id=target)
    )
    conn.execute(
        update(REGISTRATIONS)
        .where(REGISTRATIONS.c.id == conflict.registration_id)
        .values(attendee_id=target)
    )
    refold_attendee(conn, target, seq=bump_seq(session, conflict.event_id))
