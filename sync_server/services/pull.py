"""Device pulls: an event's configuration plus the attendees changed after a cursor (the event's
change sequence, never a timestamp), with tombstones for deletions, as `shared.sync` wire values.
A gate receives what the door shows and decides with: an attendee's email only when the event's
`gate_email` is on.

Attendee rows are built straight from SQL rows (no ORM objects): a first pull of 100,000
attendees must stay within a few seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, Text, cast, select

from shared.sync import (
    MAX_PULL_LIMIT,
    AttendeeRow,
    CheckpointRow,
    EventConfig,
    EventRow,
    PullPage,
    TicketTypeRow,
    ZoneRow,
    ZoneState,
)
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Attendee, AttendeeTombstone, Checkpoint, Event, TicketType, Zone

__all__ = ["MustRefetch", "parse_cursor", "pull_page", "sync_events"]

ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
TOMBSTONES: Table = AttendeeTombstone.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
TICKET_TYPES: Table = TicketType.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]


class MustRefetch(ApiError):
    def __init__(self, why: str) -> None:
        super().__init__(410, "must_refetch", f"{why}: pull again without a cursor")


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise MustRefetch("The cursor is not one this server gave out")
    return int(cursor)


def _event_row(event: Any) -> EventRow:
    return msgspec.convert(event, EventRow, from_attributes=True)


class _Config(msgspec.Struct, frozen=True):
    ticket_types: list[TicketTypeRow]
    zones: list[ZoneRow]
    checkpoints: list[CheckpointRow]


def _config(conn: Connection, event_id: str) -> _Config:
    def rows(table: Table, kind: type[Any]) -> list[Any]:
        found = conn.execute(select(table).where(table.c.event_id == event_id))
        return [msgspec.convert(row, kind, from_attributes=True) for row in found]

    return _Config(
        rows(TICKET_TYPES, TicketTypeRow), rows(ZONES, ZoneRow), rows(CHECKPOINTS, CheckpointRow)
    )


class _State(msgspec.Struct, frozen=True):
    """The part of an attendee's stored history that pulls carry."""

    zones: dict[str, ZoneState] = {}
    checkpoint_entries: dict[str, int] = {}
    last_entries: dict[str, datetime] = {}


_STATE = msgspec.json.Decoder(_State)
_TAGS = msgspec.json.Decoder(list[str])
_NO_STATE = _State()

_PULLED = (
    ATTENDEES.c.id,
    ATTENDEES.c.code,
    ATTENDEES.c.qr,
    ATTENDEES.c.status,
    ATTENDEES.c.ticket_type_id,
    cast(ATTENDEES.c.tags, Text),
    ATTENDEES.c.first_name,
    ATTENDEES.c.last_name,
    ATTENDEES.c.email,
    ATTENDEES.c.valid_from,
    ATTENDEES.c.valid_until,
    cast(ATTENDEES.c.state, Text),
    ATTENDEES.c.seq,
)


def _attendee(row: Any, slugs: dict[str, str], with_email: bool) -> AttendeeRow:
    """One attendee row as the wire carries it (most were never scanned: their state is `{}`);
    without `with_email`, no email (left out of the row)."""
    (aid, code, qr, status, type_id, tags, first, last, email, vfrom, vuntil, state, seq) = row
    stored = _STATE.decode(state) if state and state != "{}" else _NO_STATE
    return AttendeeRow(
        id=aid,
        seq=seq,
        code=code,
        qr=qr,
        status=status,
        ticket_type=slugs.get(type_id, ""),
        tags=_TAGS.decode(tags) if tags and tags != "[]" else [],
        first_name=first,
        last_name=last,
        email=email if with_email else None,
        valid_from=vfrom,
        valid_until=vuntil,
        zones=stored.zones,
        checkpoint_entries=stored.checkpoint_entries,
        last_entries=stored.last_entries,
    )


def pull_page(conn: Connection, event: Any, cursor: int | None, limit: int) -> PullPage:
    """One page of a pull; `event` is the (owned) event row."""
    limit = max(1, min(limit, MAX_PULL_LIMIT))
    head = int(event.change_seq)
    if cursor is not None and (cursor > head or cursor < int(event.tombstone_floor or 0)):
        raise MustRefetch("The cursor is newer than this server's data or older than it keeps")
    after = cursor or 0
    config = _config(conn, event.id)
    slugs = {t.id: t.slug for t in config.ticket_types}
    rows = conn.execute(
        select(*_PULLED)
        .where(ATTENDEES.c.event_id == event.id, ATTENDEES.c.seq > after)
        .order_by(ATTENDEES.c.seq)
        .limit(limit + 1)
    ).all()
    with_email = bool(event.gate_email)
    items = [_attendee(r, slugs, with_email) for r in rows]
    if cursor is not None:  # a first pull is a snapshot: deletions before it do not matter
        gone = conn.execute(
            select(TOMBSTONES.c.id, TOMBSTONES.c.seq)
            .where(TOMBSTONES.c.event_id == event.id, TOMBSTONES.c.seq > after)
            .order_by(TOMBSTONES.c.seq)
            .limit(limit + 1)
        ).all()
        items += [AttendeeRow(id=g.id, seq=g.seq, deleted=True) for g in gone]
        items.sort(key=lambda item: item.seq)
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = items[-1].seq if has_more else max(head, after)
    return PullPage(
        cursor=str(next_cursor),
        has_more=has_more,
        server_time=utcnow(),
        event=_event_row(event),
        ticket_public_key=event.ticket_public_key,
        ticket_types=config.ticket_types,
        zones=config.zones,
        checkpoints=config.checkpoints,
        attendees=items,
    )


def sync_events(conn: Connection, organization_id: str) -> list[EventConfig]:
    """The events a device of this organization may scan, with their zones and checkpoints."""
    events = conn.execute(
        select(EVENTS)
        .where(EVENTS.c.organization_id == organization_id, EVENTS.c.status != "archived")
        .order_by(EVENTS.c.created_at)
    ).all()
    out = []
    for event in events:
        config = _config(conn, event.id)
        out.append(
            EventConfig(
                **msgspec.structs.asdict(_event_row(event)),
                ticket_public_key=event.ticket_public_key,
                ticket_types=config.ticket_types,
                zones=config.zones,
                checkpoints=config.checkpoints,
            )
        )
    return out
