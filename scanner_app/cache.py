"""Writing what the server sends into the local store, in bulk.

Pull pages arrive as parsed JSON and are written with `executemany` straight from the dicts:
no pydantic model or ORM object per attendee, so a 100,000-attendee snapshot applies in a few
seconds on a small machine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from scanner_app.store import Store, fold_key, iso

__all__ = [
    "apply_config",
    "apply_events",
    "apply_page",
    "finish_snapshot",
    "mark_reflected",
]

_UPSERT_ATTENDEE = (
    "INSERT INTO attendees(id, event_id, code, qr, status, ticket_type, tags, first_name,"
    " last_name, email, valid_from, valid_until, state, first_key, last_key, email_key,"
    " walk_in, gen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?)"
    " ON CONFLICT(id) DO UPDATE SET event_id=excluded.event_id, code=excluded.code,"
    " qr=excluded.qr, status=excluded.status, ticket_type=excluded.ticket_type,"
    " tags=excluded.tags, first_name=excluded.first_name, last_name=excluded.last_name,"
    " email=excluded.email, valid_from=excluded.valid_from, valid_until=excluded.valid_until,"
    " state=excluded.state, first_key=excluded.first_key, last_key=excluded.last_key,"
    " email_key=excluded.email_key, walk_in=0, gen=excluded.gen"
)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_NO_STATE = _dumps({"zones": {}, "checkpoint_entries": {}})


def apply_config(store: Store, event: dict[str, Any], payload: dict[str, Any]) -> None:
    """Replace an event's ticket types, zones and checkpoints (they come whole every time)."""
    event_id = event["id"]
    store.config_version += 1
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO events(id, name, data, public_key) VALUES (?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data,"
            " public_key=COALESCE(excluded.public_key, events.public_key)",
            (
                event_id,
                event.get("name", event_id),
                _dumps(event),
                payload.get("ticket_public_key"),
            ),
        )
        if "ticket_types" in payload:
            conn.execute("DELETE FROM ticket_types WHERE event_id = ?", (event_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO ticket_types(id, event_id, slug, name, number, is_vip,"
                " valid_from, valid_until) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        t["id"],
                        event_id,
                        t["slug"],
                        t.get("name", t["slug"]),
                        int(t.get("number", 0)),
                        bool(t.get("is_vip")),
                        t.get("valid_from"),
                        t.get("valid_until"),
                    )
                    for t in payload["ticket_types"]
                ],
            )
        if "zones" in payload:
            conn.execute("DELETE FROM zones WHERE event_id = ?", (event_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO zones(id, event_id, name, capacity, occupancy)"
                " VALUES (?,?,?,?,?)",
                [
                    (z["id"], event_id, z["name"], z.get("capacity"), int(z.get("occupancy", 0)))
                    for z in payload["zones"]
                ],
            )
        if "checkpoints" in payload:
            conn.execute("DELETE FROM checkpoints WHERE event_id = ?", (event_id,))
            conn.executemany(
                "INSERT OR REPLACE INTO checkpoints(id, event_id, name, data) VALUES (?,?,?,?)",
                [(c["id"], event_id, c["name"], _dumps(c)) for c in payload["checkpoints"]],
            )


def apply_events(store: Store, events: list[dict[str, Any]]) -> None:
    """The answer of `GET /v1/sync/events`: every event this device may scan, with its config."""
    for event in events:
        apply_config(store, event, event)


def _attendee_row(a: dict[str, Any], event_id: str, gen: int) -> tuple[Any, ...]:
    zones, entries, tags = a.get("zones"), a.get("checkpoint_entries"), a.get("tags")
    state = (
        _dumps({"zones": zones or {}, "checkpoint_entries": entries or {}})
        if zones or entries
        else _NO_STATE
    )
    first, last, email = a.get("first_name") or "", a.get("last_name") or "", a.get("email")
    return (
        a["id"],
        event_id,
        a.get("code"),
        a.get("qr"),
        a.get("status", "valid"),
        a.get("ticket_type") or "",
        _dumps(tags) if tags else "[]",
        first,
        last,
        email,
        a.get("valid_from"),
        a.get("valid_until"),
        state,
        fold_key(first),
        fold_key(last),
        fold_key(email),
        gen,
    )


def apply_page(store: Store, event_id: str, page: dict[str, Any], *, gen: int) -> int:
    """Write one pull page (config, attendees, tombstones, cursor) in one transaction.

    `gen` is the snapshot generation the rows belong to. Returns the number of attendee rows.
    """
    rows, gone = [], []
    for a in page.get("attendees") or ():
        if a.get("deleted"):
            gone.append((a["id"],))
        else:
            rows.append(_attendee_row(a, event_id, gen))
    with store.relaxed() as conn:
        apply_config(store, page["event"], page)
        if rows:
            conn.executemany(_UPSERT_ATTENDEE, rows)
        if gone:
            conn.executemany("DELETE FROM attendees WHERE id = ?", gone)
        conn.execute(
            "UPDATE events SET cursor = ?, synced_at = ? WHERE id = ?",
            (page["cursor"], iso(datetime.now(UTC)), event_id),
        )
    return len(rows)


def finish_snapshot(store: Store, event_id: str, gen: int) -> int:
    """After a full snapshot: drop the cached attendees it did not contain (not walk-ins)."""
    with store.transaction() as conn:
        cur = conn.execute(
            "DELETE FROM attendees WHERE event_id = ? AND gen < ? AND walk_in = 0",
            (event_id, gen),
        )
        conn.execute("UPDATE events SET snapshot_gen = ? WHERE id = ?", (gen, event_id))
        return cur.rowcount


def mark_reflected(store: Store, event_id: str, acked_before: int) -> None:
    """Readings the server acknowledged before a pull began are now in the pulled state."""
    where = "reflected = 0 AND event_id = ? AND acked_at IS NOT NULL AND acked_at <= ?"
    with store.transaction() as conn:
        deltas = conn.execute(
            f"SELECT zone_key, sum(occupancy_delta) FROM readings WHERE {where}"
            " AND zone_key IS NOT NULL GROUP BY zone_key",
            (event_id, acked_before),
        ).fetchall()
        conn.executemany(
            "UPDATE zone_deltas SET delta = delta - ? WHERE zone_id = ?",
            [(int(total), zone) for zone, total in deltas if total],
        )
        conn.execute(f"UPDATE readings SET reflected = 1 WHERE {where}", (event_id, acked_before))
