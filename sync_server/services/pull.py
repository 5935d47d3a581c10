"""Device pulls: an event's configuration plus the attendees changed after a cursor (the event's
change sequence, never a timestamp), with tombstones for deletions.

Rows are built straight from SQL rows into JSON-ready dicts (no ORM objects, no per-row
validation): a first pull of 100,000 attendees must stay within a few seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, Text, cast, select

from shared.sync import MAX_PULL_LIMIT
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Attendee, AttendeeTombstone, Checkpoint, Event, TicketType, Zone

__all__ = ["MustRefetch", "PullBody", "parse_cursor", "pull_page", "sync_events", "wire_time"]

ATTENDEES: Table = Attendee.__table__  # type: ignore[assignment]
TOMBSTONES: Table = AttendeeTombstone.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
TICKET_TYPES: Table = TicketType.__table__  # type: ignore[assignment]
ZONES: Table = Zone.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = Checkpoint.__table__  # type: ignore[assignment]


class MustRefetch(ApiError):
    def __init__(self, why: str) -> None:
        super().__init__(410, "must_refetch", f"{why}: pull again without a cursor")


def wire_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise MustRefetch("The cursor is not one this server gave out")
    return int(cursor)


def _event_wire(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "slug": event.slug,
        "starts_at": wire_time(event.starts_at),
        "ends_at": wire_time(event.ends_at),
        "timezone": event.timezone,
        "capacity": event.capacity,
        "status": event.status,
    }


def _config(conn: Connection, event_id: str) -> dict[str, list[dict[str, Any]]]:
    types = [
        {
            "id": t.id,
            "slug": t.slug,
            "name": t.name,
            "number": t.number,
            "is_vip": t.is_vip,
            "valid_from": wire_time(t.valid_from),
            "valid_until": wire_time(t.valid_until),
        }
        for t in conn.execute(select(TICKET_TYPES).where(TICKET_TYPES.c.event_id == event_id))
    ]
    zones = [
        {"id": z.id, "name": z.name, "capacity": z.capacity, "occupancy": z.occupancy}
        for z in conn.execute(select(ZONES).where(ZONES.c.event_id == event_id))
    ]
    checkpoints = [
        {
            "id": c.id,
            "event_id": c.event_id,
            "name": c.name,
            "zone_id": c.zone_id,
            "direction": c.direction,
            "active": c.active,
            "allowed_ticket_types": c.allowed_ticket_types,
            "required_tags": c.required_tags,
            "excluded_tags": c.excluded_tags,
            "max_entries": c.max_entries,
            "allow_reentry": c.allow_reentry,
            "anti_passback": c.anti_passback,
            "open_from": wire_time(c.open_from),
            "open_until": wire_time(c.open_until),
        }
        for c in conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.event_id == event_id))
    ]
    return {"ticket_types": types, "zones": zones, "checkpoints": checkpoints}


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _attendee_json(row: Any, slugs: dict[str, str]) -> str:
    """One attendee row as JSON text; tags and state are spliced in as the database keeps them
    (most attendees have never been scanned: their state is `{}` and costs nothing)."""
    (
        attendee_id,
        code,
        qr,
        status,
        type_id,
        tags,
        first,
        last,
        email,
        valid_from,
        valid_until,
        state,
        seq,
    ) = row
    zones = entries = "{}"
    if state and state != "{}":
        parsed = json.loads(state)
        zones = _DUMPS(parsed.get("zones") or {})
        entries = _DUMPS(parsed.get("checkpoint_entries") or {})
    head = _DUMPS(
        {
            "id": attendee_id,
            "code": code,
            "qr": qr,
            "status": status,
            "ticket_type": slugs.get(type_id, ""),
            "first_name": first,
            "last_name": last,
            "email": email,
            "valid_from": wire_time(valid_from),
            "valid_until": wire_time(valid_until),
            "seq": seq,
        }
    )
    return f'{head[:-1]},"tags":{tags or "[]"},"zones":{zones},"checkpoint_entries":{entries}}}'


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


@dataclass(frozen=True, slots=True)
class PullBody:
    """A pull page: everything but the attendees as values, the attendees as JSON text."""

    head: dict[str, Any]
    attendees: list[str]

    def encode(self) -> bytes:
        return (
            _DUMPS(self.head)[:-1] + ',"attendees":[' + ",".join(self.attendees) + "]}"
        ).encode()


def pull_page(conn: Connection, event: Any, cursor: int | None, limit: int) -> PullBody:
    """One page of a pull; `event` is the (owned) event row."""
    limit = max(1, min(limit, MAX_PULL_LIMIT))
    head = int(event.change_seq)
    if cursor is not None and (cursor > head or cursor < int(event.tombstone_floor or 0)):
        raise MustRefetch("The cursor is newer than this server's data or older than it keeps")
    after = cursor or 0
    config = _config(conn, event.id)
    slugs = {t["id"]: t["slug"] for t in config["ticket_types"]}
    rows = conn.execute(
        select(*_PULLED)
        .where(ATTENDEES.c.event_id == event.id, ATTENDEES.c.seq > after)
        .order_by(ATTENDEES.c.seq)
        .limit(limit + 1)
    ).all()
    items: list[tuple[int, str]] = [(r[-1], _attendee_json(r, slugs)) for r in rows]
    if cursor is not None:  # a first pull is a snapshot: deletions before it do not matter
        gone = conn.execute(
            select(TOMBSTONES.c.id, TOMBSTONES.c.seq)
            .where(TOMBSTONES.c.event_id == event.id, TOMBSTONES.c.seq > after)
            .order_by(TOMBSTONES.c.seq)
            .limit(limit + 1)
        ).all()
        items += [(g.seq, _DUMPS({"id": g.id, "deleted": True, "seq": g.seq})) for g in gone]
        items.sort(key=lambda item: item[0])
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = items[-1][0] if has_more else max(head, after)
    head = {
        "cursor": str(next_cursor),
        "has_more": has_more,
        "server_time": wire_time(utcnow()),
        "event": _event_wire(event),
        "ticket_public_key": event.ticket_public_key,
        **config,
    }
    return PullBody(head, [item for _, item in items])


def sync_events(conn: Connection, organization_id: str) -> list[dict[str, Any]]:
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
            {
                **_event_wire(event),
                "ticket_public_key": event.ticket_public_key,
                "zones": config["zones"],
                "checkpoints": config["checkpoints"],
                "ticket_types": config["ticket_types"],
            }
        )
    return out
