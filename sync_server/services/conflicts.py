"""Sync conflicts: opened when a device admitted someone the server would have denied, or a door
registration duplicates an attendee; resolved by an admin with `accept`, `void_scan`,
`revoke_ticket` or `merge` (recording who, when and why), or by the server itself when a reading
that arrived later explains an admission (an exit recorded earlier at another gate).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, insert, select, update
from sqlmodel import Session

from shared import ids
from shared.conflicts import AUTO_RESOLVER, ConflictStatus, Resolution, kind_of, resolutions_for
from shared.timeline import redecide
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Attendee, Conflict, DoorRegistration, Scan, Zone
from sync_server.models.base import new_id
from sync_server.services.events import bump_seq
from sync_server.services.lookups import ATTENDEE_WITH_TYPE, row_ticket
from sync_server.services.timeline import Policies, Refold, load_timelines, write_refolds
from sync_server.webhooks import messages, outbox

__all__ = ["Reconcile", "open_conflict", "reconcile", "resolve_conflict"]

CONFLICTS: Table = Conflict.__table__  # type: ignore[assignment]
SCANS: Table = Scan.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
REGISTRATIONS: Table = DoorRegistration.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]


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
        status=ConflictStatus.OPEN.value,
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


class Reconcile:
    """Conflicts that re-deciding a timeline finds: admissions the history now denies get one
    (`scan_ids`: the reading, then the late readings before it that tell why), and open ones
    that the history explains are resolved by the server."""

    def __init__(
        self, conn: Connection, organization_id: str, subs: list[outbox.Subscriber] | None
    ) -> None:
        self.conn, self.organization_id, self.subs = conn, organization_id, subs

    def apply(self, refold: Refold, *, why: str) -> dict[str, str]:
        """Open and settle what `refold` shows; answers {reading id: new conflict id}."""
        opened: dict[str, str] = {}
        steps = refold.timeline.steps
        for step in refold.timeline.newly_contested():
            reading = step.reading
            reason = step.contested
            assert reason is not None
            late = [
                s.reading.id for s in steps if s.reading.new and s.reading.order < reading.order
            ]
            opened[reading.id] = open_conflict(
                self.conn,
                organization_id=self.organization_id,
                event_id=refold.event_id,
                kind=kind_of(reason),
                subs=self.subs,
                scan_ids=[reading.id, *late],
                attendee_ids=[refold.attendee_id],
                details={
                    "device_id": reading.device_id,
                    "checkpoint_id": reading.checkpoint_id,
                    "server_reason": reason.value,
                    "scanned_at": reading.at.isoformat(),
                    "found_when": why,
                },
            )
        for reading_id, conflict_id in opened.items():
            if not any(s.reading.new and s.reading.id == reading_id for s in steps):
                self.conn.execute(
                    update(SCANS).where(SCANS.c.id == reading_id).values(conflict_id=conflict_id)
                )
        explained = [s.reading.id for s in refold.timeline.no_longer_contested()]
        if explained:
            self._settle(explained)
        return opened

    def _settle(self, reading_ids: list[str]) -> None:
        rows = self.conn.execute(
            select(CONFLICTS)
            .join(SCANS, SCANS.c.conflict_id == CONFLICTS.c.id)
            .where(SCANS.c.id.in_(reading_ids), CONFLICTS.c.status == ConflictStatus.OPEN)
            .with_for_update(of=CONFLICTS)
        ).all()
        now = utcnow()
        for row in rows:
            values = {
                "status": ConflictStatus.RESOLVED.value,
                "resolution": Resolution.ACCEPT.value,
                "resolved_by": AUTO_RESOLVER,
                "resolved_at": now,
                "note": "A reading uploaded later explains this admission.",
            }
            self.conn.execute(update(CONFLICTS).where(CONFLICTS.c.id == row.id).values(values))
            resolved = {**row._asdict(), **values}
            _announce(self.conn, self.organization_id, "conflict.resolved", resolved, self.subs)


def reconcile(session: Session, *, organization_id: str, attendee_id: str, why: str) -> None:
    """Re-decide one attendee's whole timeline (after a reading was voided or moved to them)
    and write it back, with the conflicts it opens or explains."""
    conn = session.connection()
    row = conn.execute(
        ATTENDEE_WITH_TYPE.where(ATTENDEES.c.id == attendee_id).with_for_update(of=ATTENDEES)
    ).first()
    if row is None:
        return
    timeline = load_timelines(conn, [attendee_id], Policies(conn)).get(attendee_id, [])
    refold = Refold(
        attendee_id,
        row.event_id,
        redecide(timeline, row_ticket(row), changed_at=row.status_changed_at),
    )
    write_refolds(session, [refold])
    Reconcile(conn, organization_id, None).apply(refold, why=why)


def resolve_conflict(
    session: Session, *, conflict: Conflict, resolution: Resolution, resolver: str, note: str | None
) -> Conflict:
    """Apply an admin's decision; resolving twice is a 409."""
    conn = session.connection()
    locked = conn.execute(
        select(CONFLICTS.c.status).where(CONFLICTS.c.id == conflict.id).with_for_update()
    ).first()
    if locked is None or locked.status != ConflictStatus.OPEN:
        raise ApiError(409, "conflict", "This conflict is already resolved")
    allowed = resolutions_for(conflict.kind)
    if resolution not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise ApiError(
            422,
            "validation_error",
            f"{conflict.kind} conflicts take: {names}",
            [{"field": "resolution", "code": "not_allowed", "message": names}],
        )
    conflict.status = ConflictStatus.RESOLVED.value
    conflict.resolution = resolution.value
    conflict.resolved_by = resolver[:200]
    conflict.resolved_at = utcnow()
    conflict.note = (note or "")[:2000] or None
    session.add(conflict)
    session.flush()  # resolved before a re-decision looks at the reading's conflict
    if resolution is Resolution.VOID_SCAN and conflict.scan_ids:
        _void(session, conflict, conflict.scan_ids[0])
    elif resolution is Resolution.REVOKE_TICKET:
        _revoke(session, conflict)
    elif resolution is Resolution.MERGE and conflict.registration_id:
        _merge_registration(session, conflict)
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
                "attendee": messages.whole_attendee(
                    {
                        **row._asdict(),
                        "status": "revoked",
                        "status_changed_at": now,
                        "updated_at": now,
                    },
                    types.get(row.ticket_type_id, {}),
                ),
                "previous_status": row.status,
            },
        )
        for row in before
    ]
    outbox.emit_many(conn, subs, organization_id=conflict.organization_id, items=items)


def _void(session: Session, conflict: Conflict, scan_id: str) -> None:
    """The reading stops counting: occupancy, entries and presence are re-decided without it."""
    conn = session.connection()
    scan = conn.execute(
        select(SCANS.c.attendee_id, SCANS.c.voided).where(SCANS.c.id == scan_id)
    ).first()
    if scan is None or scan.voided:
        return
    if scan.attendee_id is None:
        conn.execute(update(SCANS).where(SCANS.c.id == scan_id).values(voided=True))
        return
    conn.execute(select(ATTENDEES.c.id).where(ATTENDEES.c.id == scan.attendee_id).with_for_update())
    conn.execute(update(SCANS).where(SCANS.c.id == scan_id).values(voided=True))
    _void_delta(session, scan_id)
    reconcile(
        session,
        organization_id=conflict.organization_id,
        attendee_id=scan.attendee_id,
        why="a reading before it was voided",
    )


def _void_delta(session: Session, scan_id: str) -> None:
    """A voided reading's share leaves its zone (the re-decision counts only the others)."""
    zones = ZONES
    conn = session.connection()
    scan = conn.execute(
        select(SCANS.c.zone_id, SCANS.c.occupancy_delta).where(SCANS.c.id == scan_id)
    ).first()
    if scan is not None and scan.zone_id and scan.occupancy_delta:
        conn.execute(
            update(zones)
            .where(zones.c.id == scan.zone_id)
            .values(occupancy=zones.c.occupancy - scan.occupancy_delta)
        )
    conn.execute(update(SCANS).where(SCANS.c.id == scan_id).values(occupancy_delta=0))


def _merge_registration(session: Session, conflict: Conflict) -> None:
    """The walk-in is the existing attendee: their door readings move over to that attendee."""
    conn = session.connection()
    target = conflict.attendee_ids[0] if conflict.attendee_ids else None
    if target is None or conflict.registration_id is None:
        return
    walk_in = ids.registration_attendee_id(conflict.registration_id)
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
    reconcile(
        session,
        organization_id=conflict.organization_id,
        attendee_id=target,
        why="a walk-in's readings were merged into this attendee",
    )
