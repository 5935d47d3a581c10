"""The cached attendees as the door looks them up: by custom code, by id, by the first letters of
a name or email (accents and case folded), and the walk-ins this door registered.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from scanner_app.store import Store, fold_key

__all__ = [
    "attendee_by_id",
    "attendee_count",
    "attendees_by_code",
    "email_taken",
    "insert_walk_in",
    "search_rows",
]


def attendees_by_code(store: Store, code: str) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM attendees WHERE code = ? LIMIT 8", (code,))


def attendee_by_id(store: Store, attendee_id: str) -> sqlite3.Row | None:
    return store.one("SELECT * FROM attendees WHERE id = ?", (attendee_id,))


def attendee_count(store: Store) -> int:
    row = store.one("SELECT count(*) FROM attendees")
    return int(row[0]) if row else 0


def email_taken(store: Store, event_id: str, email: str) -> bool:
    return (
        store.one(
            "SELECT 1 FROM attendees WHERE event_id = ? AND email_key = ?",
            (event_id, fold_key(email)),
        )
        is not None
    )


def search_rows(store: Store, event_id: str | None, q: str, limit: int) -> list[sqlite3.Row]:
    """Attendees whose first name, last name or email starts with the query's first word and
    whose keys start with every other word, or whose code or id is exactly the query; sorted
    by last name, first name."""
    words = fold_key(q).split()
    if not words:
        return []
    head, rest = words[0], words[1:]
    found: dict[str, Any] = {}
    clause = "event_id = ? AND " if event_id else ""
    base: tuple[Any, ...] = (event_id,) if event_id else ()
    for column in ("first_key", "last_key", "email_key"):
        for row in store.query(
            f"SELECT * FROM attendees WHERE {clause}{column} >= ? AND {column} < ?"
            f" ORDER BY {column} LIMIT ?",
            (*base, head, head + "\uffff", limit * 2),
        ):
            found.setdefault(row["id"], row)
    exact = q.strip()
    for row in store.query(
        "SELECT * FROM attendees WHERE code = ? UNION ALL SELECT * FROM attendees WHERE id = ?",
        (exact, exact),
    ):
        if event_id is None or row["event_id"] == event_id:
            found.setdefault(row["id"], row)

    def matches(row: Any) -> bool:
        keys = (row["first_key"], row["last_key"], row["email_key"])
        return all(any(k.startswith(w) for k in keys) for w in rest)

    return sorted(
        (r for r in found.values() if matches(r)),
        key=lambda r: (r["last_key"], r["first_key"], r["id"]),
    )[:limit]


def insert_walk_in(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    """A walk-in registered at this door, cached until a pull brings it back from the server."""
    conn.execute(
        "INSERT INTO attendees(id, event_id, status, ticket_type, tags, first_name,"
        " last_name, email, first_key, last_key, email_key, walk_in)"
        " VALUES (?,?,'valid',?,?,?,?,?,?,?,?,1)",
        (
            values["id"],
            values["event_id"],
            values["ticket_type"],
            values["tags"],
            values["first_name"],
            values["last_name"],
            values["email"],
            fold_key(values["first_name"]),
            fold_key(values["last_name"]),
            fold_key(values["email"]),
        ),
    )
