"""The server's side of code resolution and of the rules' inputs: attendee rows with their ticket
type, the `Ticket` and `CheckpointPolicy` the rules see for them, and `Lookups` over the database
for `shared.resolution.resolve`, scoped to one organization.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, select

from shared.resolution import EventKey, Lookups, ticket_of
from shared.rules import Ticket
from shared.tickets import public_key_from_b64
from sync_server.models import Attendee, Event, TicketType

__all__ = [
    "ATTENDEE_WITH_TYPE",
    "event_key",
    "online_lookups",
    "row_ticket",
    "ticket_type_ref",
]

EVENTS: Table = Event.__table__  # type: ignore[assignment]
ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
TICKET_TYPES: Table = TicketType.__table__  # type: ignore[assignment]

# An attendee row with its ticket type's fields (`tt_*`), as `row_ticket` reads it.
ATTENDEE_WITH_TYPE = select(
    ATTENDEES,
    TICKET_TYPES.c.slug.label("tt_slug"),
    TICKET_TYPES.c.is_vip.label("tt_vip"),
    TICKET_TYPES.c.name.label("tt_name"),
    TICKET_TYPES.c.valid_from.label("tt_from"),
    TICKET_TYPES.c.valid_until.label("tt_until"),
).join(TICKET_TYPES, TICKET_TYPES.c.id == ATTENDEES.c.ticket_type_id)

_BY_CODE = (
    select(ATTENDEES.c.id, ATTENDEES.c.event_id)
    .join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
    .where(ATTENDEES.c.code == bindparam("code"), EVENTS.c.organization_id == bindparam("org"))
)
_BY_DIGEST = select(EVENTS.c.id, EVENTS.c.ticket_public_key).where(
    EVENTS.c.key_digest == bindparam("digest"), EVENTS.c.organization_id == bindparam("org")
)
_EVENT_OF = (
    select(ATTENDEES.c.event_id)
    .join(EVENTS, EVENTS.c.id == ATTENDEES.c.event_id)
    .where(ATTENDEES.c.id == bindparam("id"), EVENTS.c.organization_id == bindparam("org"))
)


def row_ticket(row: Row[Any] | Any) -> Ticket:
    """The rules' view of an `ATTENDEE_WITH_TYPE` row."""
    return ticket_of(
        attendee_id=row.id,
        event_id=row.event_id,
        status=row.status,
        tags=row.tags,
        window=(row.valid_from, row.valid_until),
        ticket_type=row.tt_slug,
        type_window=(row.tt_from, row.tt_until),
        is_vip=row.tt_vip,
        names=(row.first_name, row.last_name),
    )


def ticket_type_ref(row: Row[Any] | Any) -> dict[str, Any]:
    """The ticket type of an `ATTENDEE_WITH_TYPE` row, as webhooks show it."""
    return {
        "id": row.ticket_type_id,
        "slug": row.tt_slug,
        "name": row.tt_name,
        "is_vip": row.tt_vip,
    }


def event_key(row: Any) -> EventKey:
    """An event row's ticket key, as resolution takes it."""
    return EventKey(row.id, public_key_from_b64(row.ticket_public_key))


def online_lookups(conn: Connection, event: Any) -> Lookups:
    """Lookups for one online scan at `event` (its row: id, organization_id, key_digest,
    ticket_public_key), one small query each; the scanned event's own key needs none."""
    org = event.organization_id

    def by_code(code: str) -> list[tuple[str, str]]:
        return [(r.id, r.event_id) for r in conn.execute(_BY_CODE, {"code": code, "org": org})]

    def key_of(digest: bytes) -> EventKey | None:
        if digest.hex() == event.key_digest:
            return event_key(event)
        owner = conn.execute(_BY_DIGEST, {"digest": digest.hex(), "org": org}).first()
        return event_key(owner) if owner is not None else None

    def attendee_event(attendee_id: str) -> str | None:
        if len(attendee_id) > 40:
            return None
        return conn.execute(_EVENT_OF, {"id": attendee_id, "org": org}).scalar()

    return Lookups(by_code=by_code, event_key=key_of, attendee_event=attendee_event)
