"""The cached events as the gate reads them: the events and checkpoints to choose from, a
checkpoint's stored rules, ticket types, zones with their occupancy as this device counts it,
the events' ticket keys, and each event's pull cursor.
"""

from __future__ import annotations

import sqlite3

from scanner_app.store import Store

__all__ = [
    "checkpoint_row",
    "checkpoints_of",
    "event_cursor",
    "event_rows",
    "event_settings",
    "forget_cursor",
    "forget_event",
    "public_keys",
    "ticket_types_of",
    "zone_row",
    "zone_state",
]


def event_rows(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT id, name, data FROM events ORDER BY name")


def checkpoints_of(store: Store, event_id: str) -> list[sqlite3.Row]:
    return store.query(
        "SELECT id, name, data FROM checkpoints WHERE event_id = ? ORDER BY name", (event_id,)
    )


def ticket_types_of(store: Store, event_id: str) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM ticket_types WHERE event_id = ? ORDER BY number", (event_id,))


def checkpoint_row(
    store: Store, checkpoint_id: str, event_id: str | None = None
) -> sqlite3.Row | None:
    if event_id is None:
        return store.one("SELECT name, data FROM checkpoints WHERE id = ?", (checkpoint_id,))
    return store.one(
        "SELECT name, data FROM checkpoints WHERE id = ? AND event_id = ?",
        (checkpoint_id, event_id),
    )


def zone_row(store: Store, zone_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM zones WHERE id = ?", (zone_id,))


def zone_state(store: Store, zone_id: str) -> tuple[int | None, int] | None:
    """(capacity, occupancy): the last pull's occupancy plus this device's unreflected readings."""
    zone = store.one(
        "SELECT z.capacity, z.occupancy + coalesce(d.delta, 0) FROM zones z"
        " LEFT JOIN zone_deltas d ON d.zone_id = z.id WHERE z.id = ?",
        (zone_id,),
    )
    return None if zone is None else (zone[0], int(zone[1]))


def public_keys(store: Store) -> list[tuple[str, str]]:
    """(event id, base64 public key) of every cached event that has one."""
    return [
        (row["id"], row["public_key"])
        for row in store.query("SELECT id, public_key FROM events")
        if row["public_key"]
    ]


def event_cursor(store: Store, event_id: str) -> tuple[str | None, int]:
    """(pull cursor, snapshot generation) of an event; no cursor: pull a whole snapshot."""
    row = store.one("SELECT cursor, snapshot_gen FROM events WHERE id = ?", (event_id,))
    return (row["cursor"], int(row["snapshot_gen"])) if row else (None, 0)


def forget_cursor(store: Store, event_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE events SET cursor = NULL WHERE id = ?", (event_id,))


def event_settings(store: Store) -> list[sqlite3.Row]:
    """Each cached event's row (`data`, an `EventRow` as JSON) and when it was last pulled."""
    return store.query("SELECT id, data, synced_at FROM events")


def forget_event(store: Store, event_id: str, mark: str) -> None:
    """Erase an expired event's attendees and the names in its uploaded readings, and note
    `mark` (meta `expired:<event>`); what is still queued stays (sealed) for the next upload."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM attendees WHERE event_id = ?", (event_id,))
        store.names.prune(conn)
        conn.execute("UPDATE events SET cursor = NULL WHERE id = ?", (event_id,))
        done = [
            (store.seal(["", None, "{}"], r[0]), r[0])
            for r in conn.execute(
                "SELECT id FROM readings WHERE event_id = ? AND state != 'pending'", (event_id,)
            )
        ]
        conn.executemany("UPDATE readings SET sealed = ? WHERE id = ?", done)
        conn.execute(
            "DELETE FROM registrations WHERE event_id = ? AND state != 'pending'", (event_id,)
        )
        store.set_meta(f"expired:{event_id}", mark)
