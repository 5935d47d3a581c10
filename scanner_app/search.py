"""What the door looks up in the cache: an attendee, a search as you type, the reading log, the
outbox, and the checkpoint's counters, as `scanner_app.state` values.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from scanner_app.context import GateContext
from scanner_app.pipeline import ScanPipeline
from scanner_app.state import AttendeeSummary, GateStats, GateVerdict, OutboxItem
from scanner_app.store import iso, parse_iso
from scanner_app.store.people import attendee_by_id, search_rows
from scanner_app.store.readings import (
    count_today,
    pending_readings,
    pending_registrations,
    recent_readings,
)
from scanner_app.summaries import logged_verdict, row_summary
from shared.policy import zone_key

__all__ = ["Directory"]


class Directory:
    """Read-only views of the cache for the screens (`ctx` is None before a gate is chosen)."""

    def __init__(self, pipeline: ScanPipeline) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store

    def _inside(self, row: sqlite3.Row, ctx: GateContext | None) -> bool:
        if ctx is None:
            return False
        history = self.pipeline.history(row, row["id"], debounce=False)
        return history.presence(zone_key(ctx.policy)).inside

    def attendee(self, attendee_id: str, ctx: GateContext | None) -> AttendeeSummary | None:
        row = attendee_by_id(self.store, attendee_id)
        return None if row is None else row_summary(row, ctx, self._inside(row, ctx))

    def search(
        self, q: str, ctx: GateContext | None, event_id: str | None, limit: int = 30
    ) -> list[AttendeeSummary]:
        """Attendees whose first name, last name or email starts with the query, or whose code
        is exactly it; several words must all match (`ana ru` finds Ana Ruiz)."""
        rows = search_rows(self.store, event_id, q, limit)
        return [row_summary(r, ctx, self._inside(r, ctx)) for r in rows]

    def recent(self, limit: int = 50) -> list[GateVerdict]:
        return [logged_verdict(r) for r in recent_readings(self.store, limit)]

    def outbox(self, limit: int = 100) -> list[OutboxItem]:
        items = [
            OutboxItem(
                r["id"],
                "registration",
                f"{r['first_name']} {r['last_name']}".strip() or r["attendee_id"],
                parse_iso(r["created_at"]),  # type: ignore[arg-type]
                r["attempts"],
                r["last_error"],
                problem=r["last_problem"],
            )
            for r in pending_registrations(self.store, limit)
        ]
        for r in pending_readings(self.store, limit - len(items)):
            summary = logged_verdict(r).attendee
            items.append(
                OutboxItem(
                    r["id"],
                    "scan",
                    summary.name if summary else r["code"][:40],
                    parse_iso(r["scanned_at"]),  # type: ignore[arg-type]
                    r["attempts"],
                    r["last_error"],
                    r["direction"],
                    r["status"],
                    r["last_problem"],
                )
            )
        return items

    def stats(self, ctx: GateContext | None) -> GateStats:
        if ctx is None:
            return GateStats(None, 0, None, 0, 0)
        occupancy = self.pipeline.occupancy(ctx)
        midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        counts = count_today(self.store, ctx.policy.id, iso(midnight) or "")
        return GateStats(
            ctx.zone["name"] if ctx.zone is not None else None,
            occupancy.occupancy if occupancy else 0,
            occupancy.capacity if occupancy else None,
            counts.get("in", 0),
            counts.get("out", 0),
        )
