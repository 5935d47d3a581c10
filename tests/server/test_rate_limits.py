"""Rate limits shared by every worker and server (SPEC sections 3 and 13): two servers on one
database (SQLite and PostgreSQL) or on one Redis refuse the request past the limit together;
each process adds its count to the shared window every 1/100 of the limit and keeps counting
by itself while the shared store is down."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from sync_server.models import ApiKey
from sync_server.services.rate_limits import WINDOWS, DatabaseWindows, RateLimiter
from tests.server.conftest import Api, assert_error, live_api

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 6
API_KEYS = ApiKey.__table__  # type: ignore[attr-defined]


@contextmanager
def _two_servers(db_url: str, tmp_path: Path, **extra: object) -> Iterator[tuple[Api, Api]]:
    with (
        live_api(db_url, tmp_path / "a", rate_limit_per_minute=LIMIT, **extra) as one,
        live_api(db_url, tmp_path / "b", rate_limit_per_minute=LIMIT, **extra) as two,
    ):
        frozen = time.time()  # one window for the whole test, whatever the wall clock does
        for api in (one, two):
            api.app.state.rate_limiter.clock = lambda: frozen
        yield one, two


def _alternate(one: Api, two: Api) -> tuple[list[int], httpx.Client, httpx.Client]:
    org = one.new_org()
    other = httpx.Client(base_url=two.url, headers=org.client.headers)
    seen = []
    for n in range(LIMIT):
        client = org.client if n % 2 == 0 else other
        answer = client.get("/v1/events")
        assert answer.status_code == 200, answer.text
        seen.append(int(answer.headers["x-ratelimit-remaining"]))
    return seen, org.client, other


def test_two_servers_on_one_database_share_the_limit(db_url: str, tmp_path: Path) -> None:
    with _two_servers(db_url, tmp_path) as (one, two):
        seen, first, second = _alternate(one, two)
        assert seen == [5, 4, 3, 2, 1, 0]  # each server saw the other's requests
        assert_error(first.get("/v1/events"), 429, "rate_limited")
        assert_error(second.get("/v1/events"), 429, "rate_limited")
        with one.app.state.engine.connect() as conn:
            assert conn.execute(select(func.sum(WINDOWS.c["count"]))).scalar_one() >= LIMIT + 2
        second.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_two_servers_on_one_redis_share_the_limit(db_url: str, tmp_path: Path) -> None:
    with _two_servers(db_url, tmp_path, redis_url=REDIS_URL) as (one, two):
        seen, first, second = _alternate(one, two)
        assert seen == [5, 4, 3, 2, 1, 0]
        assert_error(second.get("/v1/events"), 429, "rate_limited")
        assert_error(first.get("/v1/events"), 429, "rate_limited")
        with one.app.state.engine.connect() as conn:  # counted on Redis, not in the database
            assert conn.execute(select(func.count()).select_from(WINDOWS)).scalar_one() == 0
            key_id = conn.execute(select(API_KEYS.c.id)).scalar_one()
        window = int(one.app.state.rate_limiter.clock() // 60)
        counted = redis.Redis.from_url(REDIS_URL).get(f"doorcheck:rate:{key_id}:{window}")
        assert counted is not None and int(counted) >= LIMIT + 2
        second.close()


class _Counter:
    """A shared store with real behaviour, in memory: counts additions."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, int], int] = {}
        self.calls = 0
        self.down = False

    def add(self, subject: str, window: int, count: int) -> int:
        if self.down:
            raise OSError("connection refused")
        self.calls += 1
        self.totals[subject, window] = self.totals.get((subject, window), 0) + count
        return self.totals[subject, window]


def test_a_process_adds_its_count_every_hundredth_of_the_limit() -> None:
    store, now = _Counter(), [6000.0]
    limiter = RateLimiter(1000, store, clock=lambda: now[0])
    for _ in range(95):
        limiter.hit("k")
    # the first request of the window, then every 10 requests
    assert store.calls == 10 and store.totals["k", 100] == 91
    other = RateLimiter(1000, store, clock=lambda: now[0])  # another process
    _, remaining, _ = other.hit("k")
    assert remaining == 1000 - 92  # its first request adds at once: it learns the others' 91
    now[0] += 1.5  # a quiet second later, one request adds what was counted
    limiter.hit("k")
    assert store.totals["k", 100] == 97


def test_a_busy_sqlite_store_never_makes_a_request_wait(tmp_path: Path) -> None:
    with live_api(f"sqlite:///{tmp_path}/busy.db", tmp_path, rate_limit_per_minute=3) as api:
        windows = DatabaseWindows(api.app.state.engine)
        assert windows.add("k", 100, 1) == 1
        holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            start = time.monotonic()
            assert windows.add("k", 100, 1) is None
            assert time.monotonic() - start < 0.5
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert windows.add("k", 100, 2) == 3


def test_a_store_that_fails_leaves_each_process_counting() -> None:
    store, now = _Counter(), [6000.0]
    limiter = RateLimiter(3, store, clock=lambda: now[0])
    store.down = True
    assert [limiter.hit("k")[1] for _ in range(4)] == [2, 1, 0, -1]
    store.down = False
    now[0] += 6  # tried again a few seconds later: what was counted meanwhile is added
    limiter.hit("k")
    assert store.totals["k", 100] == 5
