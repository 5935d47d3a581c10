"""Engines and sessions: SQLite in WAL mode (busy timeout, foreign keys, write transactions that
take the lock up front) by default, PostgreSQL through `postgresql+psycopg://…`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event
from sqlalchemy.engine import Dialect, Engine
from sqlmodel import Session, create_engine

__all__ = ["Checkpointer", "UTCDateTime", "is_sqlite", "make_engine", "session_scope", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps naive UTC text; PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, checkpoints: bool = True) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and foreign keys, and copy the
    WAL back into the database themselves (SQLite's auto-checkpoint) unless `checkpoints` is
    False: then a `Checkpointer` must run beside them."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
        )
        _tune_sqlite(engine, WAL_AUTOCHECKPOINT if checkpoints else 0)
        return engine
    # A lock held by someone else is waited for as long as SQLite's busy timeout, then 503.
    lock_wait = {"options": f"-c lock_timeout={BUSY_TIMEOUT_MS}"}
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=lock_wait,
    )


WAL_AUTOCHECKPOINT = 10_000  # pages


def _tune_sqlite(engine: Engine, autocheckpoint: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={BUSY_TIMEOUT_MS}",
            "temp_store=MEMORY",
            "cache_size=-65536",
            f"wal_autocheckpoint={autocheckpoint}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN: read-then-write transactions never deadlock or see a
        # snapshot go stale under concurrent scans. Read-only sessions opt out.
        if not conn.get_execution_options().get("sqlite_immediate", True):
            conn.exec_driver_sql("BEGIN")
        elif not _begin_immediate(conn.connection.dbapi_connection):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's own wait, then its error


BUSY_TIMEOUT_MS = 5_000  # shorter than a client's timeout (10 s): past it, 503 and retry
FAST_BUSY_S = 1.0  # how long _begin_immediate retries by itself before SQLite's handler does
_SQLITE_BUSY = 5


def _begin_immediate(dbapi_conn: sqlite3.Connection) -> bool:
    """`BEGIN IMMEDIATE`, retried every 0.1-1 ms while another connection holds the write lock;
    False if it still does after FAST_BUSY_S (or on any other error: the caller's plain BEGIN
    IMMEDIATE then waits the busy timeout and raises through SQLAlchemy).

    SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20… ms between tries, so a scan that meets
    the webhook dispatcher's 2 ms transaction used to wait about 10 ms (measured: 20-30 such
    waits in 600 scans); retrying here takes the lock within a millisecond of its release."""
    dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        delay, deadline = 0.0001, time.monotonic() + FAST_BUSY_S
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", _SQLITE_BUSY) & 0xFF != _SQLITE_BUSY:
                    return False
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.001)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class Checkpointer:
    """Copies an SQLite database's WAL back into its file from a thread of its own, every
    `every` seconds (a PASSIVE checkpoint: it never waits for, nor blocks, a reader or writer).

    SQLite's auto-checkpoint runs inside whichever commit takes the WAL past its threshold: in
    the API that is a scan at the door, and it cost the server ~15% of its CPU per scan on this
    machine (bench_webhooks' ingest phases). The API's engine is made with `checkpoints=False`
    and runs one of these instead."""

    def __init__(self, engine: Engine, every: float = 1.0) -> None:
        self.path = engine.url.database if is_sqlite(engine) else None
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: tuple[int, int, int] | None = None  # the latest checkpoint's answer

    def start(self) -> None:
        if not self.path or self.path == ":memory:" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames copied back)."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        assert self.path is not None
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            while not self._stop.wait(self.every):
                try:
                    self.last = self.checkpoint(conn)
                except sqlite3.Error:  # a locked or vanished file now and then: next time
                    continue
            self.last = self.checkpoint(conn)
        finally:
            conn.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
