"""An attendee's timeline: every recorded reading in the order it happened (device clocks
corrected), folded with `shared.rules.replay_with_deltas` into presence, entries and each
reading's share of its zone's occupancy. Used when a late offline reading arrives and when an
admin voids one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select, update

from shared.rules import Direction, History, Reading, Status, replay_with_deltas
from shared.sync import history_to_state
from sync_server.models import Attendee, Scan, Zone

__all__ = ["Refold", "reading_of", "refold_attendee", "timeline"]

SCANS: Table = Scan.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]


def reading_of(row: Any) -> Reading:
    return Reading(
        row.checkpoint_id,
        row.zone_id or f"cp:{row.checkpoint_id}",
        Direction(row.direction),
        Status(row.status),
        row.ordered_at or row.scanned_at,
        row.device_id,
    )


def timeline(conn: Connection, attendee_id: str) -> list[Any]:
    """The attendee's non-voided readings, oldest first (corrected time, then HLC, then id)."""
    return list(
        conn.execute(
            select(
                SCANS.c.id,
                SCANS.c.checkpoint_id,
                SCANS.c.zone_id,
                SCANS.c.direction,
                SCANS.c.status,
                SCANS.c.scanned_at,
                SCANS.c.ordered_at,
                SCANS.c.device_id,
                SCANS.c.occupancy_delta,
            )
            .where(SCANS.c.attendee_id == attendee_id, SCANS.c.voided.is_(False))
            .order_by(SCANS.c.ordered_at, SCANS.c.hlc, SCANS.c.id)
        ).all()
    )


@dataclass(frozen=True, slots=True)
class Refold:
    history: History
    zone_changes: dict[str, int]


def refold_attendee(conn: Connection, attendee_id: str, *, seq: int) -> Refold:
    """Re-decide presence from the whole timeline and write it back: the attendee's state, each
    reading's occupancy delta, and the zones' occupancy counters. Call inside the transaction
    that changed the timeline, with the attendee row locked."""
    rows = timeline(conn, attendee_id)
    history, deltas = replay_with_deltas(reading_of(r) for r in rows)
    changes: dict[str, int] = {}
    for row, delta in zip(rows, deltas, strict=True):
        if delta != row.occupancy_delta:
            conn.execute(update(SCANS).where(SCANS.c.id == row.id).values(occupancy_delta=delta))
            if row.zone_id:
                changes[row.zone_id] = changes.get(row.zone_id, 0) + delta - row.occupancy_delta
    for zone_id, change in changes.items():
        if change:
            conn.execute(
                update(ZONES)
                .where(ZONES.c.id == zone_id)
                .values(occupancy=ZONES.c.occupancy + change)
            )
    accepted = [r for r in rows if r.status == Status.ACCEPTED]
    entries = sum(1 for r in accepted if r.direction == Direction.IN)
    conn.execute(
        update(ATTENDEES)
        .where(ATTENDEES.c.id == attendee_id)
        .values(
            state=history_to_state(history),
            entries=entries,
            last_scan_at=max((r.scanned_at for r in accepted), default=None),
            seq=seq,
        )
    )
    return Refold(history, changes)
