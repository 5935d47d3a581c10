"""Rate limits per caller and minute, shared by every worker and server (SPEC sections 3 and 13):
counted on Redis when `DOORCHECK_REDIS_URL` is set, else in the database (`rate_limit_windows`).

Each process counts in memory and adds its count to the shared window at its first request of
a window, then every `step` requests (1/100 of the limit, at least 1) or after a second,
reading the shared total back: the limit holds across processes to within one step per process,
at a shared write per hundredth of the limit instead of one per request.

    limiter = RateLimiter(6000, DatabaseWindows(engine))
    limit, remaining, reset = limiter.hit("key_123")   # remaining < 0: refuse
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from sync_server.db import BUSY_TIMEOUT_MS
from sync_server.models import RateLimitWindow

__all__ = ["DatabaseWindows", "RateLimiter", "RedisWindows", "SharedWindows", "shared_windows"]

log = logging.getLogger("doorcheck.server")
WINDOWS: Table = RateLimitWindow.__table__  # type: ignore[assignment]
FLUSH_EVERY_S = 1.0
RETRY_AFTER_S = 5.0  # a failed store is tried again after this long
BUSY_RETRY_S = 0.25  # a busy one (SQLite's write lock taken) after this long
PURGE_ONE_IN = 500  # of the database's additions; windows older than the last one go


class SharedWindows(Protocol):
    def add(self, subject: str, window: int, count: int) -> int | None:
        """Add `count` requests to `subject`'s `window` (unix minutes); the window's total, or
        None when the store is busy (try again shortly)."""


class DatabaseWindows:
    """Windows in the `rate_limit_windows` table: one upsert that answers the total. On SQLite
    it never waits for another writer (an import's chunk, a long scan): a read request must not
    queue behind writers for its rate limit; it answers None and the count is added later."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        new = insert(WINDOWS)
        self._add = new.on_conflict_do_update(
            index_elements=["subject", "window"],
            set_={"count": WINDOWS.c["count"] + new.excluded["count"]},
        ).returning(WINDOWS.c["count"])
        self._purge = delete(WINDOWS).where(WINDOWS.c.window < bindparam("before"))

    def add(self, subject: str, window: int, count: int) -> int | None:
        purge = random.randrange(PURGE_ONE_IN) == 0
        if self.sqlite:
            return self._add_sqlite(subject, window, count, purge)
        with self.engine.begin() as conn:
            if purge:
                conn.execute(self._purge, {"before": window - 1})
            row = {"subject": subject, "window": window, "count": count}
            return int(conn.execute(self._add, row).scalar_one())

    def _add_sqlite(self, subject: str, window: int, count: int, purge: bool) -> int | None:
        """The upsert on the driver's connection, taking the write lock only if it is free
        within `SQLITE_WAIT_MS`."""
        with self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_MS}")
            try:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # another writer holds the lock: not now
                    return None
                try:
                    if purge:
                        raw.execute(_SQLITE_PURGE, (window - 1,))
                    total = raw.execute(_SQLITE_ADD, (subject, window, count)).fetchone()[0]
                    raw.execute("COMMIT")
                except BaseException:
                    raw.execute("ROLLBACK")
                    raise
                return int(total)
            finally:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class RedisWindows:
    """Windows as Redis counters (`INCRBY` and `EXPIRE` in one round trip), gone after 2 min."""

    def __init__(self, url: str, prefix: str = "doorcheck:rate:") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = prefix

    def add(self, subject: str, window: int, count: int) -> int:
        key = f"{self.prefix}{subject}:{window}"
        pipe = self.client.pipeline(transaction=False)
        pipe.incrby(key, count)
        pipe.expire(key, 120)
        total, _ = pipe.execute()
        return int(total)


SQLITE_WAIT_MS = 5
_SQLITE_ADD = (
    'INSERT INTO rate_limit_windows (subject, "window", count) VALUES (?, ?, ?) '
    'ON CONFLICT (subject, "window") DO UPDATE SET count = count + excluded.count '
    "RETURNING count"
)
_SQLITE_PURGE = 'DELETE FROM rate_limit_windows WHERE "window" < ?'


def shared_windows(engine: Engine, redis_url: str | None) -> SharedWindows:
    return RedisWindows(redis_url) if redis_url else DatabaseWindows(engine)


@dataclass(slots=True)
class _Count:
    window: int
    known: int = 0  # the shared total when last added to
    pending: int = 0  # counted here since
    added_at: float = 0.0
    busy_until: float = 0.0  # the store was busy: not tried again before this


def _store_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, sqlite3.Error, OSError]
    try:
        import redis
    except ImportError:
        pass
    else:
        errors.append(redis.RedisError)
    return tuple(errors)


class RateLimiter:
    """A fixed one-minute window per caller, shared through `shared` (in this process alone
    without one)."""

    def __init__(
        self,
        per_minute: int,
        shared: SharedWindows | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_minute, self.shared, self.clock = per_minute, shared, clock
        self.step = max(1, per_minute // 100)
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()
        self._errors = _store_errors()
        self._warned_at = 0.0
        self._down_until = 0.0  # after a failure the store is left alone a few seconds

    def hit(self, subject: str) -> tuple[int, int, int]:
        """Count one request: (limit, remaining, seconds to reset); remaining < 0 means refuse."""
        now = self.clock()
        window = int(now // 60)
        with self._lock:
            count = self._counts.get(subject)
            if count is None or count.window != window:
                # the first request of a window adds at once: it learns the others' count
                count = self._counts[subject] = _Count(window)
                if len(self._counts) > 100_000:
                    self._counts = {k: v for k, v in self._counts.items() if v.window == window}
            count.pending += 1
            if (
                self.shared is not None
                and now >= self._down_until
                and now >= count.busy_until
                and (count.pending >= self.step or now - count.added_at >= FLUSH_EVERY_S)
            ):
                self._add(subject, count, now)
            used = count.known + count.pending
        reset = int((window + 1) * 60 - now) + 1
        return self.per_minute, self.per_minute - used, reset

    def _add(self, subject: str, count: _Count, now: float) -> None:
        assert self.shared is not None
        try:
            total = self.shared.add(subject[:80], count.window, count.pending)
        except self._errors as exc:  # counted here meanwhile, added on the next try
            self._down_until = now + RETRY_AFTER_S
            self._warn(exc, now)
            return
        if total is None:  # busy: counted here meanwhile, tried again in a moment
            count.busy_until = now + BUSY_RETRY_S
            return
        count.known, count.pending, count.added_at = total, 0, now

    def _warn(self, exc: Any, now: float) -> None:
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("rate limits counted per process: the shared store failed (%s)", exc)
