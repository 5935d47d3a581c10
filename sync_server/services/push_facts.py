"""What a group of pushed readings needs from the database, read with one query per kind of row
(custom codes, ticket keys, attendees locked in id order, their timelines) and offered to
`shared.resolution` as `Lookups` over what was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from shared.history import History, history_from_state
from shared.resolution import EventKey, Lookups, ReadCode, ScannedAs
from shared.timeline import TimedReading
from sync_server.models import Attendee, Event
from sync_server.services.lookups import ATTENDEE_WITH_TYPE, event_key
from sync_server.services.timeline import Policies, chunks, last_readings, load_timelines

__all__ = ["Facts", "load_facts"]

EVENTS: Table = Event.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]


@dataclass
class Facts:
    codes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    keys: dict[bytes, EventKey] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)  # attendees of the organization, by id
    timelines: dict[str, list[TimedReading]] = field(default_factory=lambda: defaultdict(list))
    bases: dict[str, History] = field(default_factory=dict)  # history before the new readings

    @property
    def lookups(self) -> Lookups:
        rows = self.rows

        def attendee_event(attendee_id: str) -> str | None:
            row = rows.get(attendee_id)
            return None if row is None else str(row.event_id)

        def issued_qr(attendee_id: str) -> str | None:
            row = rows.get(attendee_id)
            return None if row is None else row.qr

        return Lookups(
            by_code=lambda code: self.codes.get(code, []),
            event_key=self.keys.get,
            attendee_event=attendee_event,
            issued_qr=issued_qr,
        )

    def load_timelines(
        self,
        conn: Connection,
        policies: Policies,
        read_at: Iterable[tuple[str | None, str, datetime]],
    ) -> None:
        """What the re-decision of each attendee the group names (attendee id, event read at,
        corrected time) needs, for the attendees of the event they were read at. When every new
        reading comes after all the attendee's stored ones (uploads arrive in order, mostly),
        the stored state is the history before them and no reading is loaded (`bases`);
        otherwise the whole timeline is (`timelines`). A push stays linear in what it brings."""
        earliest: dict[str, datetime] = {}
        for attendee_id, event_id, at in read_at:
            row = self.rows.get(attendee_id or "")
            if row is not None and row.event_id == event_id:
                earliest[row.id] = min(at, earliest.get(row.id, at))
        latest = last_readings(conn, earliest)
        whole = [a for a, at in earliest.items() if a in latest and latest[a] >= at]
        self.timelines.update(load_timelines(conn, whole, policies))
        for attendee_id in earliest.keys() - set(whole):
            self.bases[attendee_id] = history_from_state(self.rows[attendee_id].state or {})


def load_facts(conn: Connection, organization_id: str, reads: Sequence[ReadCode]) -> Facts:
    """Everything the group's codes name, within the organization: custom-code matches, ticket
    keys by digest, and the attendees (locked, in id order). Rows are read by their own indexes
    and kept when their event is the organization's (a join on the organization made SQLite
    walk an event's attendees: 30% of a push's time at 100,000 attendees)."""
    facts = Facts()
    org_events = {
        row.id
        for row in conn.execute(
            select(EVENTS.c.id).where(EVENTS.c.organization_id == organization_id)
        )
    }
    custom = sorted({r.code for r in reads if r.kind is ScannedAs.CUSTOM})
    for chunk in chunks(custom):
        for row in conn.execute(
            select(ATTENDEES.c.id, ATTENDEES.c.event_id, ATTENDEES.c.code).where(
                ATTENDEES.c.code.in_(chunk)
            )
        ):
            if row.event_id in org_events:
                facts.codes.setdefault(row.code, []).append((row.id, row.event_id))
    digests = sorted({r.payload.event_digest.hex() for r in reads if r.payload is not None})
    for chunk in chunks(digests):
        for row in conn.execute(
            select(EVENTS.c.id, EVENTS.c.key_digest, EVENTS.c.ticket_public_key).where(
                EVENTS.c.key_digest.in_(chunk), EVENTS.c.organization_id == organization_id
            )
        ):
            facts.keys[bytes.fromhex(row.key_digest)] = event_key(row)
    wanted = {a for matches in facts.codes.values() for a, _ in matches}
    wanted |= {r.payload.attendee_id for r in reads if r.payload is not None}
    wanted |= {r.code for r in reads if r.kind is ScannedAs.ATTENDEE_ID}
    for chunk in chunks(sorted(a for a in wanted if len(a) <= 40)):
        query = (
            ATTENDEE_WITH_TYPE.where(ATTENDEES.c.id.in_(chunk))
            .order_by(ATTENDEES.c.id)
            .with_for_update(of=ATTENDEES)
        )
        facts.rows.update({r.id: r for r in conn.execute(query) if r.event_id in org_events})
    return facts
