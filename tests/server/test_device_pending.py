"""The count of uploads a gate still queues (`X-Doorcheck-Pending` on each request), stored
cheaply: a changed count at once, an unchanged one with the once-a-minute `last_seen_at` write,
nothing when nothing changed, and junk ignored, never an error (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update

from shared.sync import PENDING_HEADER
from sync_server.db import session_scope
from sync_server.models import Device
from tests.server.conftest import Api, Org, add_attendee, setup_event
from tests.server.test_device_wipe import device
from tests.server.test_sync import Gate


@pytest.fixture
def venue(api: Api, org: Org) -> dict[str, Any]:
    s = setup_event(org)
    s["ana"] = add_attendee(org, s["id"], email="ana@example.com")
    return s


@pytest.fixture
def device_writes(api: Api) -> Iterator[list[str]]:
    """Every UPDATE of the devices table the server runs while the test does."""
    seen: list[str] = []
    engine = api.app.state.engine

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DEVICES"):
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", watch)
    yield seen
    sa_event.remove(engine, "before_cursor_execute", watch)


def test_the_pending_count_is_stored_when_it_changes(
    api: Api, org: Org, venue: dict[str, Any], device_writes: list[str]
) -> None:
    gate = Gate(api, org, "Gate H")
    pull = f"/v1/sync/events/{venue['id']}/pull"

    def send(value: str | bytes | None, path: str = "/v1/sync/events") -> None:
        headers = {} if value is None else {PENDING_HEADER: value}
        response = gate.client.get(path, headers=headers)
        assert response.status_code == 200, (value, response.text)

    send(None)
    assert device(org, gate.id)["pending_uploads"] is None
    device_writes.clear()
    send("7", pull)
    first = device(org, gate.id)
    assert first["pending_uploads"] == 7 and first["pending_reported_at"] is not None
    assert len(device_writes) == 1
    for _ in range(10):  # the same count again: no write at all
        send("7")
    assert len(device_writes) == 1
    assert device(org, gate.id)["pending_reported_at"] == first["pending_reported_at"]
    send("0", pull)  # a change is stored at once, within the once-a-minute window
    assert device(org, gate.id)["pending_uploads"] == 0 and len(device_writes) == 2

    junk: list[str | bytes] = [
        "-1",
        "abc",
        "1e3",
        "0x10",
        "3.0",
        "+4",
        "",
        "10000001",
        "9" * 400,
        "١٢".encode(),
        b"\xff\xfe",
        "5, 6",
    ]
    for value in junk:
        send(value)
        send(value, pull)
    assert device(org, gate.id)["pending_uploads"] == 0 and len(device_writes) == 2
    send("12")
    assert device(org, gate.id)["pending_uploads"] == 12

    # A push and an online scan carry it too; an unchanged count rides with the minute's write.
    reading = gate.reading(venue["id"], venue["gate_a"]["id"], venue["ana"]["qr"])
    pushed = gate.client.post(
        "/v1/sync/push",
        json={"device_time": gate.now().isoformat(), "scans": [reading]},
        headers={PENDING_HEADER: "1"},
    )
    assert pushed.status_code == 200 and device(org, gate.id)["pending_uploads"] == 1
    scanned = gate.client.post(
        f"/v1/checkpoints/{venue['gate_b']['id']}/scans",
        json={"code": "NOBODY"},
        headers={PENDING_HEADER: "0"},
    )
    assert scanned.status_code == 200 and device(org, gate.id)["pending_uploads"] == 0
    before = device(org, gate.id)
    with session_scope(api.app.state.engine) as session:
        session.execute(
            update(Device)
            .where(Device.id == gate.id)
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    send("0")
    after = device(org, gate.id)
    assert after["pending_uploads"] == 0
    assert after["pending_reported_at"] > before["pending_reported_at"]
    assert datetime.fromisoformat(after["last_seen_at"]) > datetime.now(UTC) - timedelta(minutes=1)


def test_counts_reported_by_many_requests_at_once(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    gate = Gate(api, org, "Gate I")
    errors: list[str] = []

    def hammer(n: int) -> None:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            for i in range(5):
                response = client.get(
                    "/v1/sync/events",
                    headers={"Authorization": f"Bearer {gate.token}", PENDING_HEADER: str(n + i)},
                )
                if response.status_code != 200:
                    errors.append(response.text)

    threads = [threading.Thread(target=hammer, args=(n * 10,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert device(org, gate.id)["pending_uploads"] in {
        n * 10 + i for n in range(6) for i in range(5)
    }
