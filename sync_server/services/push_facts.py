"""What a group of pushed readings needs from the database, read with one query per kind of row
(custom codes, ticket keys, attendees locked in id order, their timelines) and offered to
`shared.resolution` as `Lookups` over what was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, select

from shared.resolution import EventKey, Lookups, ReadCode, ScannedAs
from shared.timeline import TimedReading
from sync_server.models import Attendee, Event
from sync_server.services.lookups import ATTENDEE_WITH_TYPE, event_key
from sync_server.services.timeline import Policies, chunks, load_timelines

__all__ = ["Facts", "load_facts"]

EVENTS: Table = Event.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]


@dataclass
class Facts:
    codes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    keys: dict[bytes, EventKey] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)  # attendees of the organization, by id
    timelines: dict[str, list[TimedReading]] = field(default_factory=lambda: defaultdict(list))

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
        self, conn: Connection, policies: Policies, read_at: Iterable[tuple[str | None, str]]
    ) -> None:
        """The timelines of the attendees the group names (attendee id, event read at) when they
        are attendees of the event they were read at."""
        own = {
            attendee_id
            for attendee_id, event_id in read_at
            if attendee_id in self.rows and self.rows[attendee_id].event_id == event_id
        }
        self.timelines.update(load_timelines(conn, own, policies))


def load_facts(conn: Connection, organization_id: str, reads: Sequence[ReadCode]) -> Facts:
    facts = Facts()
    org = organization_id
    custom = sorted({r.code for r in reads if r.kind is ScannedAs.CUSTOM})
    for chunk in chunks(custom):
        for row in conn.execute(
            select(ATTENDEES.c.id, ATTENDEES.c.event_id, ATTENDEES.c.code)
            .join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
            .where(ATTENDEES.c.code.in_(chunk), EVENTS.c.organization_id == org)
        ):
            facts.codes.setdefault(row.code, []).append((row.id, row.event_id))
    digests = sorted({r.payload.event_digest.hex() for r in reads if r.payload is not None})
    for chunk in chunks(digests):
        for row in conn.execute(
            select(EVENTS.c.id, EVENTS.c.key_digest, EVENTS.c.ticket_public_key).where(
                EVENTS.c.key_digest.in_(chunk), EVENTS.c.organization_id == org
            )
        ):
            facts.keys[bytes.fromhex(row.key_digest)] = event_key(row)
    wanted = {a for matches in facts.codes.values() for a, _ in matches}
    wanted |= {r.payload.attendee_id for r in reads if r.payload is not None}
    wanted |= {r.code for r in reads if r.kind is ScannedAs.ATTENDEE_ID}
    for chunk in chunks(sorted(a for a in wanted if len(a) <= 40)):
        query = (
            ATTENDEE_WITH_TYPE.join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
            .where(ATTENDEES.c.id.in_(chunk), EVENTS.c.organization_id == org)
            .order_by(ATTENDEES.c.id)
            .with_for_update(of=ATTENDEES)
        )
        facts.rows.update({row.id: row for row in conn.execute(query)})
    return facts
