"""The search keys of the cached attendees (first name, last name and email, case and accents
folded), held in memory only: a SQLite database attached as `names` at `:memory:`, never
written to the gate's disk. The sealed file has no index of names at all; this one is filled by
opening every cached attendee once after the gate opens (in the background, in slices, so that
verdicts never wait long for the store), and kept in step by every statement that writes the
attendees from then on.

Measured before choosing it over blind indexes of name prefixes in the file (docs/scanner.md,
"A lost gate"): prefix tags either leak how many names share their first letters or make a
search open every attendee whose name starts like the query (about a second for a common
prefix among 100,000).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner_app.store import Store

__all__ = ["SLICE", "NameIndex"]

SLICE = 1000  # attendees read, then written, per hold of the store's lock while filling
PAUSE = 0.001  # between slices: the lock is not fair, a waiting thread needs the gap
_SCHEMA = (
    "CREATE TABLE names.keys (id TEXT PRIMARY KEY, event_id TEXT NOT NULL,"
    " first_key TEXT NOT NULL, last_key TEXT NOT NULL, email_key TEXT NOT NULL)",
    "CREATE INDEX names.ix_first ON keys (event_id, first_key)",
    "CREATE INDEX names.ix_last ON keys (event_id, last_key)",
    "CREATE INDEX names.ix_email ON keys (event_id, email_key)",
)
_PUT = "INSERT OR REPLACE INTO names.keys VALUES (?,?,?,?,?)"
_FILL = (  # only attendees still cached, never over what a writer put meanwhile
    "INSERT OR IGNORE INTO names.keys SELECT ?,?,?,?,?"
    " WHERE EXISTS (SELECT 1 FROM main.attendees WHERE id = ?)"
)


class NameIndex:
    """`put`/`drop` in the writer's transaction; `ready()` waits until the fill is done."""

    def __init__(self, store: Store) -> None:
        self.store = store
        conn = store.conn
        conn.execute("ATTACH DATABASE ':memory:' AS names")
        for statement in _SCHEMA:
            conn.execute(statement)
        self._done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- kept in step by the writers ------------------------------------------------------------
    @staticmethod
    def put(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        """(id, event_id, first_key, last_key, email_key) of attendees written."""
        conn.executemany(_PUT, rows)

    @staticmethod
    def drop(conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        conn.executemany("DELETE FROM names.keys WHERE id = ?", [(i,) for i in ids])

    @staticmethod
    def prune(conn: sqlite3.Connection) -> None:
        """Forget the keys of attendees no longer cached (after a bulk delete)."""
        conn.execute("DELETE FROM names.keys WHERE id NOT IN (SELECT id FROM main.attendees)")

    # -- filled once -------------------------------------------------------------------------
    def start(self) -> None:
        """Fill the index in the background (every cached attendee opened once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._fill, name="doorcheck-names", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        from scanner_app.store import fold_key

        store, after = self.store, ""
        try:
            while not self._stop.is_set():
                with store.lock:  # the store's connection is shared: read a slice under its lock
                    rows = store.conn.execute(
                        "SELECT id, event_id, sealed FROM attendees WHERE id > ?"
                        " ORDER BY id LIMIT ?",
                        (after, SLICE),
                    ).fetchall()
                if not rows:
                    break
                keys = []  # opened outside the lock: a verdict never waits for the decryption
                for attendee_id, event_id, sealed in rows:
                    # the sealed fields in `people._SEALED` order: code, qr, first, last, email
                    first, last, email = store.unseal(sealed, attendee_id)[2:5]
                    keys.append(
                        (attendee_id, event_id, fold_key(first), fold_key(last), fold_key(email))
                    )
                # one transaction per slice (a statement each would be 2.5 s for 100,000); a
                # writer may have changed or deleted one of them since it was read: theirs wins
                with store.transaction() as conn:
                    conn.executemany(_FILL, [(*k, k[0]) for k in keys])
                after = rows[-1][0]
                time.sleep(PAUSE)  # let a verdict waiting for the store have it first
        except sqlite3.ProgrammingError:  # the store was closed under the fill
            return
        finally:
            self._done.set()

    def ready(self, timeout: float = 60.0) -> bool:
        """Wait for the fill (started if it was not)."""
        self.start()
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def query(self, sql: str, params: Any) -> list[sqlite3.Row]:
        self.ready()
        return self.store.query(sql, params)
