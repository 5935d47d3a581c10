"""Storage under faults: a write lock held past the bounded wait, a read-only database, a
database that is gone. Writers get 503 `unavailable` with `Retry-After` (never 500), probes and
reads keep answering, nothing acknowledged is lost, and the server recovers by itself (SPEC
section 10; issue 17 finding 5)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.server.conftest import Api, Org, add_attendee, live_api, setup_event

HOLD_S = 7.0  # longer than the server's bounded wait for the lock (5 s)


@contextmanager
def write_lock_held(db_url: str) -> Iterator[None]:
    """Another process's writer holds the database's write lock (a zone's row on PostgreSQL)."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    url = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE zones IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def _scans(api: Api, org: Org, venue: dict[str, Any], codes: list[str]) -> list[Any]:
    results: list[Any] = [None] * len(codes)

    def one(i: int) -> None:
        with httpx.Client(base_url=api.url, timeout=60, headers=org.client.headers) as c:
            response = c.post(
                f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": codes[i]}
            )
            results[i] = (time.monotonic(), response)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(codes))]
    for thread in threads:
        thread.start()
    return [threads, results]


def test_a_write_lock_held_too_long_answers_503_and_nothing_else_waits(
    api: Api, org: Org, db_url: str
) -> None:
    venue = setup_event(org, zone_capacity=None)
    people = [add_attendee(org, venue["id"], first_name=f"P{i}") for i in range(30)]
    with write_lock_held(db_url):
        threads, results = _scans(api, org, venue, [p["qr"] for p in people])
        time.sleep(0.5)  # the scans are waiting for the lock now
        health = httpx.get(f"{api.url}/healthz", timeout=30)
        health_at = time.monotonic()
        events = org.client.get("/v1/events")
        events_at = time.monotonic()
        ready = httpx.get(f"{api.url}/readyz", timeout=30)
        time.sleep(HOLD_S)
    for thread in threads:
        thread.join(60)
    assert health.status_code == 200 and events.status_code == 200, events.text
    assert ready.status_code in (200, 503)
    finished = [at for at, _ in results]
    assert health_at < min(finished) and events_at < min(finished)  # nobody waited for writers
    statuses = [r.status_code for _, r in results]
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses
    for _, response in results:
        if response.status_code == 503:
            assert response.headers["retry-after"] and response.json()["error"]["code"] == (
                "unavailable"
            )
    again = org.client.post(
        f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": people[-1]["qr"]}
    )
    assert again.status_code == 200, again.text
    stored = org.client.get(f"/v1/events/{venue['id']}/scans", params={"limit": 100}).json()
    assert len(stored["data"]) == statuses.count(200) + 1  # what was answered, exactly


def _read_only(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///file:{db_url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    return db_url


@contextmanager
def read_only_database(db_url: str) -> Iterator[str]:
    """The same database, seen read-only (a SQLite file opened read-only; a PostgreSQL database
    whose new transactions are read-only)."""
    if db_url.startswith("sqlite"):
        yield _read_only(db_url)
        return
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        try:
            yield db_url
        finally:
            admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')


def test_a_read_only_database_answers_503_to_writes_and_serves_reads(
    api: Api, org: Org, db_url: str, tmp_path: Path
) -> None:
    venue = setup_event(org, zone_capacity=None)
    person = add_attendee(org, venue["id"])
    with read_only_database(db_url) as url, live_api(url, tmp_path / "ro", migrate=False) as ro:
        client = httpx.Client(base_url=ro.url, timeout=30, headers=org.client.headers)
        listed = client.get(f"/v1/events/{venue['id']}/attendees")
        assert listed.status_code == 200 and len(listed.json()["data"]) == 1
        for attempt in (
            client.post(
                f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": person["qr"]}
            ),
            client.post(f"/v1/events/{venue['id']}/zones", json={"name": "Annex"}),
        ):
            assert attempt.status_code == 503, attempt.text
            assert attempt.json()["error"]["code"] == "unavailable"
            assert attempt.headers["retry-after"]
        assert httpx.get(f"{ro.url}/healthz").status_code == 200
    scan = org.client.post(
        f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": person["qr"]}
    )
    assert scan.status_code == 200 and scan.json()["verdict"]["status"] == "accepted"


@pytest.mark.postgres
def test_a_database_that_is_gone_answers_503(tmp_path: Path) -> None:
    gone = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    with live_api(gone, tmp_path, migrate=False) as api:
        headers = {"Authorization": "Bearer dk_live_" + "x" * 43}
        scan = httpx.post(
            f"{api.url}/v1/checkpoints/cp_x/scans", json={"code": "X"}, headers=headers, timeout=30
        )
        assert scan.status_code == 503, scan.text
        assert scan.headers["retry-after"]
        assert httpx.get(f"{api.url}/healthz").status_code == 200
        assert httpx.get(f"{api.url}/readyz", timeout=30).status_code == 503


def test_pushes_during_a_held_lock_are_refused_whole_then_applied_once(
    api: Api, org: Org, db_url: str
) -> None:
    """A device keeps uploading while the database is locked past the wait: each refused batch
    is refused whole (503, nothing kept), the retry after the lock is applied, every reading
    exactly once."""
    import uuid
    from datetime import UTC, datetime, timedelta

    venue = setup_event(org, zone_capacity=None)
    people = [add_attendee(org, venue["id"], first_name=f"P{i}") for i in range(40)]
    code = org.client.post("/v1/devices", json={"name": "Busy"}).json()["enrollment_code"]
    token = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": code, "name": "B"}).json()[
        "device_token"
    ]
    device = httpx.Client(
        base_url=api.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )
    start = datetime.now(UTC) - timedelta(minutes=10)
    batches = [
        [
            {
                "id": str(uuid.uuid4()),
                "event_id": venue["id"],
                "checkpoint_id": venue["gate_a"]["id"],
                "code": person["qr"],
                "scanned_at": (start + timedelta(seconds=n * 10 + i)).isoformat(),
                "hlc": f"{n:05d}{i:05d}-00001-busy",
                "device_verdict": {"status": "accepted", "reason": "ok"},
            }
            for i, person in enumerate(people[n * 10 : n * 10 + 10])
        ]
        for n in range(4)
    ]

    def push(batch: list[Any]) -> httpx.Response:
        body = {"device_time": datetime.now(UTC).isoformat(), "scans": batch}
        return device.post("/v1/sync/push", json=body)

    refused = []
    with write_lock_held(db_url):
        for batch in batches[:2]:
            refused.append(push(batch))
    assert [r.status_code for r in refused] == [503, 503], [r.text for r in refused]
    assert all(r.headers["retry-after"] for r in refused)
    stored = org.client.get(f"/v1/events/{venue['id']}/scans", params={"limit": 100}).json()
    assert stored["data"] == []  # refused whole: nothing kept
    answers = [push(batch) for batch in batches] + [push(batches[0])]  # and one retried twice
    assert [a.status_code for a in answers] == [200] * 5
    assert {r["status"] for a in answers[:4] for r in a.json()["results"]} == {"applied"}
    assert {r["status"] for r in answers[4].json()["results"]} == {"duplicate"}
    stored = org.client.get(f"/v1/events/{venue['id']}/scans", params={"limit": 100}).json()
    assert len(stored["data"]) == 40 and len({s["id"] for s in stored["data"]}) == 40
