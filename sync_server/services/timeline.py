"""Attendees' timelines on the server: their readings loaded for `shared.timeline` (device clocks
corrected, with their checkpoints' policies and conflicts), and a re-decision written back:
each reading's share of its zone, the zones' occupancy, the attendee's presence and entries.
Push, voiding a reading and merging a walk-in all go through here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlmodel import Session

from shared.conflicts import ConflictStatus
from shared.history import history_to_state
from shared.policy import CheckpointPolicy, checkpoint_policy
from shared.rules import Direction, Status
from shared.timeline import TimedReading, Timeline
from sync_server.models import Attendee, Checkpoint, Conflict, Scan, Zone
from sync_server.services.events import bump_seq

__all__ = [
    "IN_CHUNK",
    "UPDATE_ATTENDEE",
    "Policies",
    "Refold",
    "chunks",
    "last_entry",
    "last_readings",
    "load_timelines",
    "timed",
    "write_refolds",
]

IN_CHUNK = 500  # bound parameters per IN (...) list
SCANS: Table = Scan.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]
CONFLICTS: Table = Conflict.__table__  # type: ignore[assignment]

_TIMELINE = (
    select(
        SCANS.c.id,
        SCANS.c.attendee_id,
        SCANS.c.checkpoint_id,
        SCANS.c.zone_id,
        SCANS.c.direction,
        SCANS.c.status,
        SCANS.c.scanned_at,
        SCANS.c.ordered_at,
        SCANS.c.device_id,
        SCANS.c.hlc,
        SCANS.c.occupancy_delta,
        SCANS.c.override,
        CONFLICTS.c.kind.label("conflict_kind"),
        CONFLICTS.c.status.label("conflict_status"),
    )
    .outerjoin(CONFLICTS, CONFLICTS.c.id == SCANS.c.conflict_id)
    .where(SCANS.c.voided.is_(False))
)
_UPDATE_DELTA = (
    update(SCANS)
    .where(SCANS.c.id == bindparam("b_id"))
    .values(occupancy_delta=bindparam("b_delta"))
)
UPDATE_ATTENDEE = (
    update(ATTENDEES)
    .where(ATTENDEES.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        entries=bindparam("b_entries"),
        last_scan_at=bindparam("b_last"),
        seq=bindparam("b_seq"),
    )
)


def chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


class Policies:
    """Checkpoint policies by id, read once per transaction (None: the checkpoint is gone)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: dict[str, Any] = {}
        self._policies: dict[str, CheckpointPolicy | None] = {}

    def load(self, checkpoint_ids: Iterable[str]) -> None:
        wanted = sorted({c for c in checkpoint_ids if c not in self.rows})
        for chunk in chunks(wanted):
            for row in self.conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.id.in_(chunk))):
                self.rows[row.id] = row
        for checkpoint_id in wanted:
            self.rows.setdefault(checkpoint_id, None)

    def row(self, checkpoint_id: str) -> Any:
        if checkpoint_id not in self.rows:
            self.load([checkpoint_id])
        return self.rows[checkpoint_id]

    def policy(self, checkpoint_id: str) -> CheckpointPolicy | None:
        if checkpoint_id not in self._policies:
            row = self.row(checkpoint_id)
            self._policies[checkpoint_id] = None if row is None else checkpoint_policy(row)
        return self._policies[checkpoint_id]


def timed(row: Any, policy: CheckpointPolicy | None, *, new: bool = False) -> TimedReading:
    """A stored (or about to be stored) reading as the timeline takes it."""
    at = row.ordered_at or row.scanned_at
    status = getattr(row, "conflict_status", None)
    return TimedReading(
        id=row.id,
        checkpoint_id=row.checkpoint_id,
        zone_id=row.zone_id,
        direction=Direction(row.direction),
        status=Status(row.status),
        at=at,
        order=(at, row.hlc or "", row.id),
        checkpoint=policy,
        device_id=row.device_id,
        delta=row.occupancy_delta,
        conflict=row.conflict_kind if status == ConflictStatus.OPEN else None,
        settled=status == ConflictStatus.RESOLVED,
        new=new,
        override=bool(getattr(row, "override", False)),
    )


def load_timelines(
    conn: Connection, attendee_ids: Iterable[str], policies: Policies
) -> dict[str, list[TimedReading]]:
    """Every non-voided reading of each attendee (in no particular order: `order` sorts them)."""
    rows: list[Any] = []
    for chunk in chunks(sorted(set(attendee_ids))):
        rows += conn.execute(_TIMELINE.where(SCANS.c.attendee_id.in_(chunk))).all()
    policies.load(r.checkpoint_id for r in rows)
    timelines: dict[str, list[TimedReading]] = defaultdict(list)
    for row in rows:
        timelines[row.attendee_id].append(timed(row, policies.policy(row.checkpoint_id)))
    return timelines


def last_readings(conn: Connection, attendee_ids: Iterable[str]) -> dict[str, datetime]:
    """When each attendee's latest non-voided reading happened (corrected time), for those that
    have any."""
    latest: dict[str, datetime] = {}
    when = func.coalesce(SCANS.c.ordered_at, SCANS.c.scanned_at)
    for chunk in chunks(sorted(set(attendee_ids))):
        for row in conn.execute(
            select(SCANS.c.attendee_id, func.max(when))
            .where(SCANS.c.attendee_id.in_(chunk), SCANS.c.voided.is_(False))
            .group_by(SCANS.c.attendee_id)
        ):
            if row[1] is not None:
                latest[row[0]] = row[1]
    return latest


def last_entry(
    conn: Connection, attendee_id: str, zone_id: str | None, before: datetime
) -> str | None:
    """The attendee's latest accepted entry into `zone_id` before `before`, if any (a
    conflict names it beside the admission it questions)."""
    row = conn.execute(
        select(SCANS.c.id)
        .where(
            SCANS.c.attendee_id == attendee_id,
            SCANS.c.voided.is_(False),
            SCANS.c.status == Status.ACCEPTED.value,
            SCANS.c.direction == Direction.IN.value,
            SCANS.c.zone_id == zone_id if zone_id is not None else SCANS.c.zone_id.is_(None),
            func.coalesce(SCANS.c.ordered_at, SCANS.c.scanned_at) < before,
        )
        .order_by(func.coalesce(SCANS.c.ordered_at, SCANS.c.scanned_at).desc(), SCANS.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.id)


@dataclass
class Refold:
    """One attendee's re-decided timeline, to be written."""

    attendee_id: str
    event_id: str
    timeline: Timeline
    seq: int = 0


@dataclass
class Written:
    """What writing refolds changed: each zone's occupancy, the new readings' deltas."""

    zone_changes: dict[str, int] = field(default_factory=dict)
    new_deltas: dict[str, int] = field(default_factory=dict)


def write_refolds(session: Session, refolds: list[Refold]) -> Written:
    """Write re-decided timelines in the caller's transaction (attendee rows locked): stored
    readings' deltas, the zones' occupancy, each attendee's state, entries, last scan and change
    sequence. New readings (not stored yet) get their deltas in `Written.new_deltas`."""
    conn = session.connection()
    by_event: dict[str, list[Refold]] = defaultdict(list)
    for refold in refolds:
        by_event[refold.event_id].append(refold)
    written = Written()
    deltas: list[dict[str, Any]] = []
    attendees: list[dict[str, Any]] = []
    for event_id, group in by_event.items():
        last = bump_seq(session, event_id, len(group))
        for seq, refold in enumerate(group, start=last - len(group) + 1):
            refold.seq = seq
            timeline = refold.timeline
            for zone, change in timeline.zone_changes().items():
                written.zone_changes[zone] = written.zone_changes.get(zone, 0) + change
            for step in timeline.steps:
                if step.reading.new:
                    written.new_deltas[step.reading.id] = step.delta
                elif step.delta != step.reading.delta:
                    deltas.append({"b_id": step.reading.id, "b_delta": step.delta})
            attendees.append(
                {
                    "b_id": refold.attendee_id,
                    "b_state": history_to_state(timeline.history),
                    "b_entries": timeline.history.entries,
                    "b_last": timeline.history.last_scan_at,
                    "b_seq": seq,
                }
            )
    if deltas:
        conn.execute(_UPDATE_DELTA, deltas)
    if attendees:
        conn.execute(UPDATE_ATTENDEE, attendees)
    for zone_id, change in sorted(written.zone_changes.items()):
        conn.execute(
            update(ZONES).where(ZONES.c.id == zone_id).values(occupancy=ZONES.c.occupancy + change)
        )
    return written
