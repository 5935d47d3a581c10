"""Upgrading a gate file from before sealing (schema 1-2: names, emails, codes and the device
token in clear) without losing its queue: everything is copied into a new sealed file, then the
old one is shredded and the new one takes its place. A crash midway leaves the old file whole
(the new one is written beside it and renamed over it last).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from scanner_app.store import SCHEMA_VERSION, Store, shred, store_files
from scanner_app.store.cipher import Cipher
from scanner_app.store.people import seal_attendee

__all__ = ["is_legacy", "upgrade_legacy"]

_PLAIN_TABLES = ("events", "ticket_types", "zones", "checkpoints", "zone_deltas")
_SECRETS = ("device_token", "config")


def is_legacy(path: Path) -> bool:
    """A gate file written before sealing (its attendees table has a `first_name` column)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(attendees)")}
        return "first_name" in columns
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _rows(old: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    return [dict(r) for r in old.execute(f"SELECT * FROM {table}")]


def _copy(new: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    have = {r[1] for r in new.execute(f"PRAGMA table_info({table})")}
    columns = [c for c in rows[0] if c in have]
    new.executemany(
        f"INSERT OR REPLACE INTO {table}({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})",
        [[row[c] for c in columns] for row in rows],
    )


def upgrade_legacy(path: Path, cipher: Cipher) -> None:
    """Seal a legacy file's contents into a new file at `path`; the old file is shredded."""
    fresh = path.with_name(path.name + ".sealing")
    for file in store_files(fresh):
        file.unlink(missing_ok=True)
    old = sqlite3.connect(path)
    old.row_factory = sqlite3.Row
    store = Store(fresh, cipher)
    try:
        with store.transaction() as conn:
            for table in _PLAIN_TABLES:
                _copy(conn, table, _rows(old, table))
            conn.execute("UPDATE events SET cursor = NULL")  # pull again whole
            for row in _rows(old, "meta"):
                if row["key"] in _SECRETS:
                    store.set_secret(row["key"], row["value"])
                elif row["key"] not in ("schema_version", "key_check"):
                    store.set_meta(row["key"], row["value"])
            store.set_meta("schema_version", str(SCHEMA_VERSION))
            _copy_attendees(store, conn, _rows(old, "attendees"))
            _copy_sealed(store, conn, "readings", _rows(old, "readings"))
            _copy_sealed(store, conn, "registrations", _rows(old, "registrations"))
    finally:
        old.close()
        store.close()
    for file in store_files(path):
        shred(file)
    for file, target in zip(store_files(fresh), store_files(path), strict=True):
        if file.exists():
            file.rename(target)


def _copy_attendees(store: Store, conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    out = []
    for row in rows:
        personal = (
            row.get("code"),
            row.get("qr"),
            row.get("first_name") or "",
            row.get("last_name") or "",
            row.get("email"),
            row.get("tags") or "[]",
        )
        sealed = seal_attendee(store, row["id"], personal)
        out.append({**row, **dict(zip(("sealed", "code_tag"), sealed, strict=True))})
    _copy(conn, "attendees", out)


def _copy_sealed(
    store: Store, conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]
) -> None:
    names = (
        ("code", "operator", "summary")
        if table == "readings"
        else ("first_name", "last_name", "email", "tags")
    )
    defaults: dict[str, Any] = {"code": "", "summary": "{}", "first_name": "", "tags": "[]"}
    for row in rows:
        values = [row.get(n, defaults.get(n)) for n in names]
        if table == "registrations" and values[1] is None:
            values[1] = ""
        row["sealed"] = store.seal(values, row["id"])
    _copy(conn, table, rows)
