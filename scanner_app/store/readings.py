"""This device's own readings and door registrations: recording them, the outbox (what is
pending upload, what the server answered), the reading log, and the readings no pull reflects
yet as `shared.timeline` takes them.

A reading's code, operator, attendee summary and override (reason, note), and a registration's
names, email and tags, are stored sealed; rows come back as dicts with them opened.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from scanner_app.store import Store, parse_iso
from shared.history import SeenVerdict
from shared.rules import Direction, Reason, Status
from shared.timeline import TimedReading

__all__ = [
    "READING_COLUMNS",
    "count_today",
    "last_reading",
    "note_attempt",
    "pending_batch",
    "pending_count",
    "pending_readings",
    "pending_registrations",
    "recent_readings",
    "record_reading",
    "record_registration",
    "settle",
    "unreflected_of",
    "unreflected_timelines",
]

READING_COLUMNS = (
    "id",
    "event_id",
    "checkpoint_id",
    "attendee_id",
    "direction",
    "status",
    "reason",
    "warnings",
    "scanned_at",
    "hlc",
    "sealed",
    "manual",
    "source",
    "zone_key",
    "occupancy_delta",
    "offline",
    "inside_since",
    "inside_via",
)
_INSERT_READING = (
    f"INSERT INTO readings({', '.join(READING_COLUMNS)}, state, reflected)"
    f" VALUES ({', '.join('?' * len(READING_COLUMNS))}, 'pending', 0)"
)
# `override`: a supervisor's [reason, note, the denial it lifted], or None (rows sealed before
# overrides existed hold the first three only).
_READING_SEALED = ("code", "operator", "summary", "override")
_REGISTRATION_COLUMNS = (
    "id",
    "event_id",
    "attendee_id",
    "sealed",
    "ticket_type",
    "created_at",
    "hlc",
)
_REGISTRATION_SEALED = ("first_name", "last_name", "email", "tags")
_UNREFLECTED = (
    "SELECT id, attendee_id, checkpoint_id, zone_key, direction, status, scanned_at, seq,"
    " occupancy_delta FROM readings WHERE reflected = 0 AND attendee_id IS NOT NULL"
)


def _open(store: Store, rows: Iterable[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    opened = []
    for row in rows:
        found = dict(row)
        values = list(store.unseal(found.pop("sealed"), found["id"]))
        values += [None] * (len(names) - len(values))  # sealed before a field was added
        found.update(zip(names, values, strict=True))
        opened.append(found)
    return opened


def record_reading(
    store: Store, conn: sqlite3.Connection, values: dict[str, Any], hlc: str
) -> None:
    """Insert one reading into the log and the outbox, count its share of its zone and keep
    the device's clock, in the caller's transaction."""
    sealed = store.seal([values.get(c) for c in _READING_SEALED], values["id"])
    conn.execute(_INSERT_READING, [sealed if c == "sealed" else values[c] for c in READING_COLUMNS])
    if values["zone_key"] is not None and values["occupancy_delta"]:
        conn.execute(
            "INSERT INTO zone_deltas(zone_id, delta) VALUES (?, ?) ON CONFLICT(zone_id)"
            " DO UPDATE SET delta = zone_deltas.delta + excluded.delta",
            (values["zone_key"], values["occupancy_delta"]),
        )
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('hlc', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (hlc,),
    )


def record_registration(store: Store, conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    sealed = store.seal([values[c] for c in _REGISTRATION_SEALED], values["id"])
    conn.execute(
        f"INSERT INTO registrations({', '.join(_REGISTRATION_COLUMNS)}, state) VALUES"
        f" ({', '.join('?' * len(_REGISTRATION_COLUMNS))}, 'pending')",
        [sealed if c == "sealed" else values[c] for c in _REGISTRATION_COLUMNS],
    )


def _timed(row: Any) -> TimedReading:
    at = parse_iso(row["scanned_at"])
    assert at is not None
    return TimedReading(
        id=row["id"],
        checkpoint_id=row["checkpoint_id"],
        zone_id=row["zone_key"],
        direction=Direction(row["direction"]),
        status=Status(row["status"]),
        at=at,
        order=(at, row["seq"]),
        delta=row["occupancy_delta"],
    )


def unreflected_of(store: Store, attendee_id: str) -> list[TimedReading]:
    """This device's readings of one attendee that no pull reflects yet."""
    rows = store.query(
        "SELECT id, attendee_id, checkpoint_id, zone_key, direction, status, scanned_at, seq,"
        " occupancy_delta FROM readings WHERE attendee_id = ? AND reflected = 0",
        (attendee_id,),
    )
    return [_timed(r) for r in rows]


def unreflected_timelines(
    conn: sqlite3.Connection, attendee_ids: Iterable[str]
) -> dict[str, list[TimedReading]]:
    """The unreflected readings of those of `attendee_ids` that have any (usually none)."""
    wanted = set(attendee_ids)
    timelines: dict[str, list[TimedReading]] = defaultdict(list)
    for row in conn.execute(_UNREFLECTED):
        if row["attendee_id"] in wanted:
            timelines[row["attendee_id"]].append(_timed(row))
    return timelines


def last_reading(store: Store, attendee_id: str) -> tuple[datetime, SeenVerdict] | None:
    """When this device last read the attendee, and the verdict it had (for the double-read
    window: a repeat shows that verdict again)."""
    row = store.one(
        "SELECT scanned_at, checkpoint_id, direction, status, reason FROM readings"
        " WHERE attendee_id = ? ORDER BY scanned_at DESC, seq DESC LIMIT 1",
        (attendee_id,),
    )
    at = parse_iso(row["scanned_at"]) if row is not None else None
    if row is None or at is None:
        return None
    seen = SeenVerdict(
        row["checkpoint_id"],
        Direction(row["direction"]),
        Status(row["status"]),
        Reason(row["reason"]),
    )
    return at, seen


# -- the outbox ---------------------------------------------------------------------------------
def pending_count(store: Store) -> int:
    row = store.one(
        "SELECT (SELECT count(*) FROM readings WHERE state = 'pending')"
        " + (SELECT count(*) FROM registrations WHERE state = 'pending')"
    )
    return int(row[0]) if row else 0


def pending_registrations(store: Store, limit: int) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM registrations WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)
    )
    return _open(store, rows, _REGISTRATION_SEALED)


def pending_readings(store: Store, limit: int) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM readings WHERE state = 'pending' ORDER BY seq LIMIT ?", (max(limit, 0),)
    )
    return _open(store, rows, _READING_SEALED)


def pending_batch(store: Store, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The oldest pending registrations, then readings, up to `limit` items in all."""
    regs = pending_registrations(store, limit)
    return regs, pending_readings(store, limit - len(regs))


def note_attempt(store: Store, item_ids: Sequence[str], error: str, problem: str) -> None:
    """A failed upload of these items: what went wrong, in words and as a problem code."""
    with store.transaction() as conn:
        for table in ("registrations", "readings"):
            conn.executemany(
                f"UPDATE {table} SET attempts = attempts + 1, last_error = ?, last_problem = ?"
                " WHERE id = ?",
                [(error, problem, item_id) for item_id in item_ids],
            )


def settle(conn: sqlite3.Connection, results: Sequence[Any]) -> tuple[int, list[str]]:
    """Record the server's answers (`shared.sync.ItemResult`s) in the caller's transaction;
    answers how many items left the outbox and which readings changed no attendee."""
    settled, unsequenced = 0, []
    for result in results:
        verdict = result.server_verdict
        cur = conn.execute(
            "UPDATE readings SET state = ?, acked_seq = ?, attempts = attempts + 1,"
            " server_status = ?, server_reason = ?, conflict_id = ?, last_error = ?,"
            " last_problem = NULL WHERE id = ? AND state = 'pending'",
            (
                result.status.value,
                result.seq,
                verdict.status.value if verdict else None,
                verdict.reason.value if verdict else None,
                result.conflict_id,
                result.error,
                result.id,
            ),
        )
        if cur.rowcount:
            if result.seq is None:
                unsequenced.append(result.id)
        else:
            cur = conn.execute(
                "UPDATE registrations SET state = ?, attempts = attempts + 1, conflict_id = ?,"
                " last_error = ?, last_problem = NULL WHERE id = ? AND state = 'pending'",
                (result.status.value, result.conflict_id, result.error, result.id),
            )
        settled += cur.rowcount
    return settled, unsequenced


# -- the log ------------------------------------------------------------------------------------
def recent_readings(store: Store, limit: int) -> list[dict[str, Any]]:
    rows = store.query("SELECT * FROM readings ORDER BY seq DESC LIMIT ?", (limit,))
    return _open(store, rows, _READING_SEALED)


def count_today(store: Store, checkpoint_id: str, since: str) -> dict[str, int]:
    """Accepted readings at a checkpoint since `since` (RFC 3339), by direction."""
    rows = store.query(
        "SELECT direction, count(*) FROM readings WHERE checkpoint_id = ?"
        " AND status = 'accepted' AND scanned_at >= ? GROUP BY direction",
        (checkpoint_id, since),
    )
    return {str(r[0]): int(r[1]) for r in rows}
