"""The cached attendees as the door looks them up: by custom code, by id, by the first letters of
a name or email (accents and case folded), and the walk-ins this door registered.

Rows come back as dicts with their sealed fields opened (`code`, `qr`, `first_name`,
`last_name`, `email`, `tags` as JSON text) and the folded search keys (`first_key`, ...).
A custom code is looked up by its blind index (every hit checked once opened); names in the
in-memory name index (`names.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scanner_app.store import Store, fold_key

__all__ = [
    "attendee_by_id",
    "attendee_count",
    "attendees_by_code",
    "email_taken",
    "insert_walk_in",
    "seal_attendee",
    "search_rows",
]

_SEALED = ("code", "qr", "first_name", "last_name", "email", "tags")
_ATTENDEE = "SELECT * FROM attendees"


def seal_attendee(store: Store, attendee_id: str, fields: tuple[Any, ...]) -> tuple[Any, ...]:
    """The stored form of an attendee's personal fields (in `_SEALED` order): the sealed blob
    and the blind index of its custom code."""
    return (store.seal(list(fields), attendee_id), store.tag(fields[0]))


def name_keys(attendee_id: str, event_id: str, fields: tuple[Any, ...]) -> tuple[str, ...]:
    """The attendee's row in the in-memory name index (`names.py`)."""
    first, last, email = fields[2:5]
    return (attendee_id, event_id, fold_key(first), fold_key(last), fold_key(email))


def open_row(store: Store, row: Any) -> dict[str, Any]:
    """A stored attendee with its sealed fields opened and its search keys."""
    found = dict(row)
    found.update(zip(_SEALED, store.unseal(found.pop("sealed"), found["id"]), strict=True))
    found["first_key"] = fold_key(found["first_name"])
    found["last_key"] = fold_key(found["last_name"])
    found["email_key"] = fold_key(found["email"])
    return found


def _opened_all(store: Store, rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [open_row(store, r) for r in rows]


def attendees_by_code(store: Store, code: str) -> list[dict[str, Any]]:
    tag = store.tag(code)
    if tag is None:
        return []
    rows = store.query(f"{_ATTENDEE} WHERE code_tag = ? LIMIT 8", (tag,))
    return [r for r in _opened_all(store, rows) if r["code"] == code]


def attendee_by_id(store: Store, attendee_id: str) -> dict[str, Any] | None:
    row = store.one(f"{_ATTENDEE} WHERE id = ?", (attendee_id,))
    return None if row is None else open_row(store, row)


def attendee_count(store: Store) -> int:
    row = store.one("SELECT count(*) FROM attendees")
    return int(row[0]) if row else 0


def email_taken(store: Store, event_id: str, email: str) -> bool:
    rows = store.names.query(
        "SELECT 1 FROM names.keys WHERE event_id = ? AND email_key = ? LIMIT 1",
        (event_id, fold_key(email)),
    )
    return bool(rows)


def search_rows(store: Store, event_id: str | None, q: str, limit: int) -> list[dict[str, Any]]:
    """Attendees whose first name, last name or email starts with the query's first word and
    whose keys start with every other word, or whose code or id is exactly the query; sorted
    by last name, first name. Names are looked up in memory; only the hits are opened."""
    words = fold_key(q).split()
    if not words:
        return []
    head, rest = words[0], words[1:]
    clause = "event_id = ? AND " if event_id else ""
    base: tuple[Any, ...] = (event_id,) if event_id else ()
    keys: dict[str, tuple[str, str, str]] = {}
    for column in ("first_key", "last_key", "email_key"):
        for row in store.names.query(
            f"SELECT id, first_key, last_key, email_key FROM names.keys WHERE {clause}"
            f"{column} >= ? AND {column} < ? ORDER BY {column} LIMIT ?",
            (*base, head, head + "\uffff", limit * 2),
        ):
            keys.setdefault(row[0], (row[1], row[2], row[3]))
    wanted = sorted(
        (k[1], k[0], i)
        for i, k in keys.items()
        if all(any(x.startswith(w) for x in k) for w in rest)
    )[:limit]
    found: dict[str, dict[str, Any]] = {}
    for _, _, attendee_id in wanted:
        row = attendee_by_id(store, attendee_id)
        if row is not None:
            found[attendee_id] = row
    exact = q.strip()
    by_id = attendee_by_id(store, exact)
    for row in [*attendees_by_code(store, exact), *([by_id] if by_id else [])]:
        if event_id is None or row["event_id"] == event_id:
            found.setdefault(row["id"], row)
    return sorted(found.values(), key=lambda r: (r["last_key"], r["first_key"], r["id"]))[:limit]


def insert_walk_in(store: Store, conn: Any, values: dict[str, Any]) -> None:
    """A walk-in registered at this door, cached until a pull brings it back from the server."""
    fields = (
        None,
        None,
        values["first_name"],
        values["last_name"],
        values["email"],
        values["tags"],
    )
    conn.execute(
        "INSERT INTO attendees(id, event_id, status, ticket_type, sealed, code_tag, walk_in)"
        " VALUES (?,?,'valid',?,?,?,1)",
        (
            values["id"],
            values["event_id"],
            values["ticket_type"],
            *seal_attendee(store, values["id"], fields),
        ),
    )
    store.names.put(conn, [name_keys(values["id"], values["event_id"], fields)])
