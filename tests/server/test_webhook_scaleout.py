"""Webhooks from separate processes: two `doorcheck server` processes and three `doorcheck worker`
processes share one PostgreSQL outbox and deliver 5,000 messages, each exactly once; a worker
SIGKILLed while its attempt is in flight leaves the delivery to another worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from sync_server.models import WebhookAttempt, WebhookDelivery
from tests.conftest import (
    DOORCHECK,
    free_port,
    init_org,
    start_doorcheck_server,
    stop_process,
)
from tests.server.conftest import Api, Org, Receiver, live_api

pytestmark = pytest.mark.e2e

SERVERS = 2
WORKERS = 3
IMPORTED_PER_SERVER = 2450
SCANNED_PER_SERVER = 50
TOTAL = SERVERS * (IMPORTED_PER_SERVER + SCANNED_PER_SERVER)  # 5,000 messages


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        # the servers' secret: workers open the sealed webhook signing secrets with it
        "DOORCHECK_SECRET_KEY": "test-secret-" + "x" * 32,
        "DOORCHECK_WEBHOOK_ALLOW_PRIVATE": "true",
        **extra,
    }


def _workers(db_url: str, count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes; stderr to a temporary file each, read back by `_stop`."""
    command = [DOORCHECK, "worker", "--db", db_url]
    return [
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=tempfile.TemporaryFile(),
        )
        for _ in range(count)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in procs:  # all at once, then wait for each
        if proc.poll() is None:
            proc.terminate()
    return [stop_process(proc, timeout=30, terminate=False) for proc in procs]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """The server of conftest with loopback receivers allowed and no dispatcher of its own: only
    the worker processes of the test deliver."""
    with live_api(db_url, tmp_path, webhook_allow_private=True, webhook_embedded=False) as api:
        yield api


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(model).where(*where)
        return int(conn.execute(query).scalar_one())


def _states(engine: Engine) -> dict[str, Any]:
    """What the outbox holds, for a failure's message."""
    with engine.connect() as conn:
        states = conn.execute(
            select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
        ).all()
        errors = conn.execute(
            select(WebhookAttempt.error, func.count())
            .where(WebhookAttempt.error.is_not(None))
            .group_by(WebhookAttempt.error)
            .limit(5)
        ).all()
    return {"states": dict(states), "errors": dict(errors)}


def _venue(client: httpx.Client) -> tuple[str, str]:
    eid = client.post("/v1/events", json={"name": "Scale", "slug": "scale"}).json()["id"]
    client.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
    zone = client.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
    checkpoint = client.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Gate", "zone_id": zone["id"], "direction": "both"},
    ).json()
    return eid, checkpoint["id"]


def _feed(url: str, key: str, eid: str, checkpoint: str, server: int) -> int:
    """Through one server: import attendees (`attendee.registered` each), then scan some of them
    in (`checkin.accepted` each). Answers the scans accepted."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"P{i},S{server},p{i}.s{server}@example.com,general\n"
            for i in range(IMPORTED_PER_SERVER)
        )
        imported = client.post(
            f"/v1/events/{eid}/attendees/import",
            content=rows,
            headers={"Content-Type": "text/csv"},
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["created"] == IMPORTED_PER_SERVER
        page = client.get(
            f"/v1/events/{eid}/attendees", params={"q": f"S{server}", "limit": SCANNED_PER_SERVER}
        ).json()["data"]
        accepted = 0
        for person in page:
            verdict = client.post(
                f"/v1/checkpoints/{checkpoint}/scans", json={"code": person["qr"]}
            )
            assert verdict.status_code == 200, verdict.text
            accepted += verdict.json()["verdict"]["status"] == "accepted"
        return accepted


@pytest.mark.postgres
def test_two_servers_and_three_workers_deliver_each_message_once(
    db_url: str, engine: Engine, receiver: Receiver, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("servers and workers in separate processes share a PostgreSQL outbox")
    env = _env()
    key = init_org(db_url, env, tmp_path)
    ports = [free_port() for _ in range(SERVERS)]
    servers = [start_doorcheck_server(db_url, port, env, tmp_path) for port in ports]
    workers = _workers(db_url, WORKERS, env)
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        admin = httpx.Client(base_url=urls[0], headers={"Authorization": f"Bearer {key}"})
        eid, checkpoint = _venue(admin)
        endpoint = admin.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["attendee.registered", "checkin.accepted"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        with ThreadPoolExecutor(SERVERS) as pool:
            accepted = list(
                pool.map(lambda n: _feed(urls[n], key, eid, checkpoint, n), range(SERVERS))
            )
        assert accepted == [SCANNED_PER_SERVER] * SERVERS
        try:
            receiver.wait_for(TOTAL, timeout=180)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; outbox: {_states(engine)}") from None
        time.sleep(1.0)  # anything sent twice would arrive now
        deliveries = admin.get(
            f"/v1/webhooks/{endpoint.json()['id']}/deliveries", params={"limit": 5}
        )
        assert deliveries.status_code == 200, deliveries.text
    finally:
        worker_codes = _stop(workers)
        _stop(servers)
    assert worker_codes == [0] * WORKERS
    ids = Counter(r["headers"]["webhook-id"] for r in receiver.requests)
    assert len(ids) == TOTAL and max(ids.values()) == 1, ids.most_common(3)
    kinds = Counter(json.loads(r["body"])["type"] for r in receiver.requests)
    assert kinds == {
        "attendee.registered": SERVERS * IMPORTED_PER_SERVER,
        "checkin.accepted": SERVERS * SCANNED_PER_SERVER,
    }
    assert _count(engine, WebhookDelivery, WebhookDelivery.state == "succeeded") == TOTAL
    assert _count(engine, WebhookDelivery, WebhookDelivery.attempts != 1) == 0
    assert _count(engine, WebhookAttempt) == TOTAL
    with engine.connect() as conn:
        senders = Counter(
            json.loads(d)["sender"] if isinstance(d, str) else d["sender"]
            for (d,) in conn.execute(select(WebhookAttempt.details))
        )
    # five dispatching processes woke on the same NOTIFYs and shared the backlog
    assert len(senders) >= 3, senders


def test_a_worker_killed_mid_attempt_leaves_the_message_to_another(
    api: Api, org: Org, receiver: Receiver, engine: Engine
) -> None:
    """The first attempt reaches the receiver, which holds it unanswered; its worker is SIGKILLed
    then. Once the claim lapses, another worker sends the same message (same `webhook-id`) and
    it is recorded as delivered."""
    held = threading.Event()
    release = threading.Event()

    def answer(n: int) -> int:
        if n == 1:
            held.set()
            release.wait(30)
        return 204

    receiver.answer = answer
    created = org.client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["webhook.test"]}
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    sent = org.client.post(f"/v1/webhooks/{endpoint_id}/test")
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["message_id"]
    env = _env(DOORCHECK_WEBHOOK_CLAIM_SECONDS="4")
    first = _workers(api.settings.db_url, 1, env)
    second: list[subprocess.Popen[bytes]] = []
    try:
        assert held.wait(30), "the first worker never sent the message"
        first[0].send_signal(signal.SIGKILL)
        first[0].wait(timeout=10)
        assert _count(engine, WebhookAttempt) == 0, "a killed attempt was never recorded"
        second = _workers(api.settings.db_url, 1, env)
        receiver.wait_for(2, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _count(engine, WebhookDelivery, WebhookDelivery.state == "succeeded") == 1:
                break
            time.sleep(0.1)
    finally:
        release.set()
        _stop(first + second)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [message_id] * 2
    assert _count(engine, WebhookDelivery, WebhookDelivery.state == "succeeded") == 1
    log = org.client.get(f"/v1/webhooks/{endpoint_id}/deliveries").json()["data"]
    assert len(log) == 1 and log[0]["state"] == "succeeded"
    assert [a["status_code"] for a in log[0]["attempt_log"]] == [204]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_the_server_delivers_from_a_child_worker_that_dies_with_it(
    receiver: Receiver, tmp_path: Path
) -> None:
    """`doorcheck server` delivers webhooks by itself, from one child worker process; killing
    the server (SIGKILL, no clean-up) takes the worker down too: no orphan keeps sending."""
    db_url = f"sqlite:///{tmp_path / 'doorcheck.db'}"
    env = _env()
    key = init_org(db_url, env, tmp_path)
    port = free_port()
    server = start_doorcheck_server(db_url, port, env, tmp_path)
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        )
        created = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["webhook.test"]}
        )
        assert created.status_code == 201, created.text
        sent = client.post(f"/v1/webhooks/{created.json()['id']}/test")
        assert sent.status_code == 202, sent.text
        receiver.wait_for(1, timeout=30)
        assert receiver.requests[0]["headers"]["webhook-id"] == sent.json()["message_id"]
        children = _children(server.pid)
        assert len(children) == 1, children
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 15
    while _running(children[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(children[0]), "the webhook worker outlived its server"
