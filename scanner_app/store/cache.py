"""Writing what the server sends into the local store, in bulk: event configurations, pull pages
(typed `shared.sync` values, written with `executemany`), the end of a snapshot, and the
reflection of this device's readings once a pull has reached them.

When a page changes an attendee this device has readings for that no pull reflects yet, those
readings are re-decided on top of the new state (`shared.timeline`), so what they add to their
zones stays right; the zones' local deltas are the sum of the unreflected readings' shares.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from scanner_app.store import Store, iso
from scanner_app.store.people import name_keys, seal_attendee
from scanner_app.store.readings import unreflected_timelines
from shared.history import history_from_state
from shared.sync import (
    AttendeeRow,
    CheckpointRow,
    EventConfig,
    EventRow,
    PullPage,
    TicketTypeRow,
    ZoneRow,
    ZoneState,
    encode,
)
from shared.timeline import redecide

__all__ = ["apply_config", "apply_events", "apply_page", "finish_snapshot", "reflect_settled"]

_UPSERT_ATTENDEE = (
    "INSERT INTO attendees(id, event_id, status, ticket_type, valid_from, valid_until, state,"
    " gen, sealed, code_tag, walk_in) VALUES (?,?,?,?,?,?,?,?,?,?,0)"
    " ON CONFLICT(id) DO UPDATE SET event_id=excluded.event_id, status=excluded.status,"
    " ticket_type=excluded.ticket_type, valid_from=excluded.valid_from,"
    " valid_until=excluded.valid_until, state=excluded.state, gen=excluded.gen,"
    " sealed=excluded.sealed, code_tag=excluded.code_tag, walk_in=0"
)


class _State(msgspec.Struct, frozen=True):
    zones: dict[str, ZoneState]
    checkpoint_entries: dict[str, int]
    last_entries: dict[str, datetime]


_NO_STATE = '{"zones":{},"checkpoint_entries":{}}'


def apply_config(
    conn: sqlite3.Connection,
    store: Store,
    event: EventRow,
    public_key: str | None,
    parts: tuple[list[TicketTypeRow], list[ZoneRow], list[CheckpointRow]],
) -> None:
    """Replace an event's ticket types, zones and checkpoints (they come whole every time)."""
    ticket_types, zones, checkpoints = parts
    store.config_version += 1
    conn.execute(
        "INSERT INTO events(id, name, data, public_key) VALUES (?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data,"
        " public_key=COALESCE(excluded.public_key, events.public_key)",
        (event.id, event.name, encode(event).decode(), public_key or None),
    )
    conn.execute("DELETE FROM ticket_types WHERE event_id = ?", (event.id,))
    conn.executemany(
        "INSERT OR REPLACE INTO ticket_types(id, event_id, slug, name, number, is_vip,"
        " valid_from, valid_until) VALUES (?,?,?,?,?,?,?,?)",
        [
            (
                t.id,
                event.id,
                t.slug,
                t.name,
                t.number,
                t.is_vip,
                iso(t.valid_from),
                iso(t.valid_until),
            )
            for t in ticket_types
        ],
    )
    conn.execute("DELETE FROM zones WHERE event_id = ?", (event.id,))
    conn.executemany(
        "INSERT OR REPLACE INTO zones(id, event_id, name, capacity, occupancy) VALUES (?,?,?,?,?)",
        [(z.id, event.id, z.name, z.capacity, z.occupancy) for z in zones],
    )
    conn.execute("DELETE FROM checkpoints WHERE event_id = ?", (event.id,))
    conn.executemany(
        "INSERT OR REPLACE INTO checkpoints(id, event_id, name, data) VALUES (?,?,?,?)",
        [(c.id, event.id, c.name, encode(c).decode()) for c in checkpoints],
    )


def apply_events(store: Store, events: Iterable[EventConfig]) -> None:
    """The answer of `GET /v1/sync/events`: every event this device may scan, with its config."""
    with store.transaction() as conn:
        for event in events:
            parts = (event.ticket_types, event.zones, event.checkpoints)
            apply_config(conn, store, event, event.ticket_public_key, parts)


def _attendee_row(
    store: Store, a: AttendeeRow, event_id: str, gen: int, names: list[tuple[str, ...]]
) -> tuple[object, ...]:
    state = (
        encode(_State(a.zones, a.checkpoint_entries, a.last_entries)).decode()
        if a.zones or a.checkpoint_entries or a.last_entries
        else _NO_STATE
    )
    tags = json.dumps(a.tags, ensure_ascii=False, separators=(",", ":")) if a.tags else "[]"
    personal = (a.code, a.qr or None, a.first_name, a.last_name, a.email, tags)
    names.append(name_keys(a.id, event_id, personal))
    return (
        a.id,
        event_id,
        a.status.value,
        a.ticket_type,
        iso(a.valid_from),
        iso(a.valid_until),
        state,
        gen,
        *seal_attendee(store, a.id, personal),
    )


def apply_page(store: Store, event_id: str, page: PullPage, *, gen: int) -> int:
    """Write one pull page (config, attendees, tombstones, cursor) in one transaction; the last
    page of a pull also reflects the readings it reached. `gen` is the snapshot generation the
    rows belong to. Returns the number of attendee rows."""
    rows, gone, names = [], [], []
    for a in page.attendees:
        if a.deleted:
            gone.append((a.id,))
        else:
            rows.append(_attendee_row(store, a, event_id, gen, names))
    with store.relaxed() as conn:
        parts = (page.ticket_types, page.zones, page.checkpoints)
        apply_config(conn, store, page.event, page.ticket_public_key, parts)
        if rows:
            conn.executemany(_UPSERT_ATTENDEE, rows)
            store.names.put(conn, names)
        if gone:
            conn.executemany("DELETE FROM attendees WHERE id = ?", gone)
            store.names.drop(conn, [g[0] for g in gone])
        conn.execute(
            "UPDATE events SET cursor = ?, synced_at = ? WHERE id = ?",
            (page.cursor, iso(datetime.now(UTC)), event_id),
        )
        if not page.has_more and page.cursor.isascii() and page.cursor.isdigit():
            conn.execute(
                "UPDATE readings SET reflected = 1 WHERE event_id = ? AND reflected = 0"
                " AND acked_seq IS NOT NULL AND acked_seq <= ?",
                (event_id, int(page.cursor)),
            )
        _redecide_unreflected(conn, [a.id for a in page.attendees if not a.deleted])
    return len(rows)


def _redecide_unreflected(conn: sqlite3.Connection, attendee_ids: list[str]) -> None:
    """Re-decide this device's unreflected readings of these attendees on top of their new
    pulled state, and recount the zones' local deltas."""
    timelines = unreflected_timelines(conn, attendee_ids)
    updates = []
    for attendee_id, readings in timelines.items():
        row = conn.execute("SELECT state FROM attendees WHERE id = ?", (attendee_id,)).fetchone()
        base = history_from_state(json.loads(row[0])) if row is not None else None
        for step in redecide(readings, None, base=base).steps:
            if step.delta != step.reading.delta:
                updates.append((step.delta, step.reading.id))
    if updates:
        conn.executemany("UPDATE readings SET occupancy_delta = ? WHERE id = ?", updates)
    recount_zone_deltas(conn)


def recount_zone_deltas(conn: sqlite3.Connection) -> None:
    """What this device's unreflected readings add to each zone's pulled occupancy."""
    conn.execute("DELETE FROM zone_deltas")
    conn.execute(
        "INSERT INTO zone_deltas(zone_id, delta) SELECT zone_key, sum(occupancy_delta)"
        " FROM readings WHERE reflected = 0 AND zone_key IS NOT NULL GROUP BY zone_key"
    )


def reflect_settled(conn: sqlite3.Connection, reading_ids: list[str]) -> None:
    """Readings the server settled without changing any attendee (no sequence to wait for: an
    unknown code, a rejected item) are reflected at once."""
    conn.executemany(
        "UPDATE readings SET reflected = 1 WHERE id = ? AND acked_seq IS NULL",
        [(r,) for r in reading_ids],
    )
    recount_zone_deltas(conn)


def finish_snapshot(store: Store, event_id: str, gen: int) -> int:
    """After a full snapshot: drop the cached attendees it did not contain (not walk-ins)."""
    with store.transaction() as conn:
        cur = conn.execute(
            "DELETE FROM attendees WHERE event_id = ? AND gen < ? AND walk_in = 0",
            (event_id, gen),
        )
        if cur.rowcount:
            store.names.prune(conn)
        conn.execute("UPDATE events SET snapshot_gen = ? WHERE id = ?", (gen, event_id))
        return cur.rowcount
