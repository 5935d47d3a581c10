"""Webhook delivery end to end: a real receiver on loopback, the outbox written by the services,
the dispatcher signing, retrying, logging and disabling, and several dispatchers sharing one
PostgreSQL outbox without sending an attempt twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlmodel import Session
from standardwebhooks.webhooks import Webhook

from shared.webhooks import new_secret
from sync_server.db import session_scope
from sync_server.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFanout,
    WebhookMessage,
)
from sync_server.models.base import new_id
from sync_server.settings import Settings
from sync_server.webhooks import outbox
from sync_server.webhooks.dispatch import Dispatcher
from sync_server.webhooks.outbox import rfc3339
from tests.server.conftest import (
    Api,
    Org,
    Receiver,
    add_attendee,
    live_api,
    make_settings,
    scan,
    setup_event,
)

EVERY_TYPE = frozenset(
    {
        "checkin.accepted",
        "checkin.denied",
        "attendee.registered",
        "attendee.updated",
        "attendee.status_changed",
        "conflict.detected",
        "conflict.resolved",
        "zone.capacity_reached",
    }
)


@pytest.fixture
def api(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    """The server of conftest, with loopback receivers allowed; the embedded dispatcher runs only
    for tests marked `embedded` (the others drive their own)."""
    embedded = request.node.get_closest_marker("embedded") is not None
    with live_api(
        db_url,
        tmp_path,
        webhook_allow_private=True,
        webhook_retry_schedule="0.2,0.2,0.2",
        webhook_embedded=embedded,
    ) as api:
        yield api


def settings_of(api: Api, tmp_path: Path, schedule: str = "0.2,0.2,0.2") -> Settings:
    return make_settings(
        api.settings.db_url,
        tmp_path,
        webhook_allow_private=True,
        webhook_retry_schedule=schedule,
        webhook_embedded=False,
    )


def emit_checkins(conn: Connection, org: Org, total: int) -> None:
    """`total` checkin.accepted messages (data {"n": n}) for the endpoints subscribed, in the
    caller's transaction."""
    outbox.emit_many(
        conn,
        outbox.subscribers(conn, org.id),
        organization_id=org.id,
        items=[outbox.Emission(None, "checkin.accepted", {"n": n}) for n in range(total)],
    )


def add_endpoint(api: Api, org: Org, url: str, events: list[str], **extra: Any) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        organization_id=org.id,
        url=url,
        events=events,
        secret=new_secret(b"k" * 32),
        **extra,
    )
    with session_scope(api.app.state.engine) as session:
        session.add(endpoint)
    return endpoint


def count(api: Api, model: Any, *where: Any) -> int:
    with Session(api.app.state.engine) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar())


def drain(dispatcher: Dispatcher, until: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        if not dispatcher.run_once():
            time.sleep(0.05)
    assert until()


def test_online_scan_delivers_a_signed_checkin(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    setup = setup_event(org, zone_capacity=1)
    endpoint = add_endpoint(api, org, receiver.url, ["checkin.accepted", "zone.capacity_reached"])
    person = add_attendee(org, setup["id"], ticket_type="vip", tags=["press"])
    result = scan(org.client, setup["gate_a"]["id"], person["qr"], operator="marta")
    dispatcher = Dispatcher(api.app.state.engine, settings_of(api, tmp_path))
    try:
        drain(dispatcher, lambda: len(receiver.requests) >= 2)
    finally:
        dispatcher.close()
    by_type = {}
    for request in receiver.requests:
        payload = Webhook(endpoint.secret).verify(request["body"], request["headers"])
        by_type[payload["type"]] = payload
        assert request["headers"]["webhook-id"].startswith("msg_")
    checkin = by_type["checkin.accepted"]["data"]
    assert checkin["scan_id"] == result["scan_id"]
    assert checkin["offline"] is False and checkin["operator"] == "marta"
    assert checkin["attendee"]["id"] == person["id"] and checkin["attendee"]["is_vip"] is True
    assert checkin["attendee"]["tags"] == ["press"]
    assert checkin["checkpoint"] == {"id": setup["gate_a"]["id"], "name": "Gate A"}
    assert checkin["event"]["id"] == setup["id"] and checkin["scanned_at"].endswith("Z")
    full = by_type["zone.capacity_reached"]["data"]
    assert full["capacity"] == full["occupancy"] == 1
    assert count(api, WebhookDelivery, WebhookDelivery.state == "succeeded") == 2


def test_retries_keep_the_webhook_id_and_log_every_attempt(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answer = lambda n: 500 if n <= 2 else 200
    setup = setup_event(org)
    add_endpoint(api, org, receiver.url, ["checkin.accepted", "checkin.denied"])
    scan(org.client, setup["gate_a"]["id"], "no-such-code")  # a denial is recorded too
    dispatcher = Dispatcher(api.app.state.engine, settings_of(api, tmp_path))
    try:
        drain(dispatcher, lambda: len(receiver.requests) >= 3)
    finally:
        dispatcher.close()
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1 and len(receiver.requests) == 3
    assert json.loads(receiver.requests[0]["body"])["type"] == "checkin.denied"
    with Session(api.app.state.engine) as session:
        attempts = session.execute(
            select(WebhookAttempt.status_code, WebhookAttempt.response_excerpt).order_by(
                WebhookAttempt.attempted_at
            )
        ).all()
        delivery = session.execute(select(WebhookDelivery)).scalar_one()
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert all(a.response_excerpt == "ok" for a in attempts)
    assert delivery.state == "succeeded" and delivery.attempts == 3


def test_410_disables_the_endpoint_and_exhausted_schedule_fails(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answer = lambda n: 410
    setup = setup_event(org)
    gone = add_endpoint(api, org, receiver.url, ["checkin.denied"])
    dead = add_endpoint(api, org, "http://127.0.0.1:9/nothing", ["checkin.denied"])
    scan(org.client, setup["gate_a"]["id"], "nobody")
    dispatcher = Dispatcher(api.app.state.engine, settings_of(api, tmp_path, "0.05"))
    try:
        drain(
            dispatcher,
            lambda: count(api, WebhookDelivery, WebhookDelivery.state == "failed") == 2,
        )
    finally:
        dispatcher.close()
    with Session(api.app.state.engine) as session:
        gone_row = session.get(WebhookEndpoint, gone.id)
        dead_row = session.get(WebhookEndpoint, dead.id)
    assert gone_row is not None and gone_row.active is False and "410" in gone_row.disabled_reason
    assert dead_row is not None and dead_row.active and dead_row.failing_since is not None
    assert count(api, WebhookAttempt) == 3  # one 410, two connection errors (1 + 1 retry)
    scan(org.client, setup["gate_a"]["id"], "nobody")  # only the live endpoint gets it now
    with Session(api.app.state.engine) as session:
        assert session.execute(select(WebhookFanout.endpoint_ids)).scalars().all() == [dead.id]


@pytest.mark.embedded
def test_the_server_delivers_by_itself(api: Api, org: Org, receiver: Receiver) -> None:
    setup = setup_event(org)
    endpoint = add_endpoint(api, org, receiver.url, ["checkin.accepted"])
    person = add_attendee(org, setup["id"])
    started = time.monotonic()
    scan(org.client, setup["gate_a"]["id"], person["qr"])
    receiver.wait_for(1)
    assert time.monotonic() - started < 5
    payload = Webhook(endpoint.secret).verify(
        receiver.requests[0]["body"], receiver.requests[0]["headers"]
    )
    assert payload["data"]["attendee"]["id"] == person["id"]


def test_no_subscriber_writes_nothing(api: Api, org: Org, receiver: Receiver) -> None:
    setup = setup_event(org)
    add_endpoint(api, org, receiver.url, ["attendee.updated"])
    add_endpoint(api, org, receiver.url, ["checkin.accepted"], event_ids=["evt_other"])
    add_endpoint(api, org, receiver.url, ["checkin.accepted"], active=False)
    person = add_attendee(org, setup["id"])
    scan(org.client, setup["gate_a"]["id"], person["qr"])
    assert count(api, WebhookMessage) == 0 and count(api, WebhookFanout) == 0


def test_attendee_and_conflict_events_are_queued(api: Api, org: Org, receiver: Receiver) -> None:
    setup = setup_event(org)
    types = ["attendee.registered", "attendee.updated", "attendee.status_changed"]
    add_endpoint(api, org, receiver.url, types)
    person = add_attendee(org, setup["id"])
    response = org.client.patch(
        f"/v1/events/{setup['id']}/attendees/{person['id']}",
        json={"status": "revoked", "company": "Acme"},
    )
    assert response.status_code == 200, response.text
    with Session(api.app.state.engine) as session:
        rows = session.execute(select(WebhookMessage.type, WebhookMessage.body)).all()
    bodies = {t: json.loads(b)["data"] for t, b in rows}
    assert set(bodies) == set(types)
    assert bodies["attendee.status_changed"]["previous_status"] == "valid"
    assert sorted(bodies["attendee.updated"]["changed"]) == ["company", "status"]
    assert bodies["attendee.registered"]["attendee"]["id"] == person["id"]


@pytest.mark.postgres
def test_concurrent_dispatchers_never_send_an_attempt_twice(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    if not api.settings.db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED sharing is a PostgreSQL feature")
    receiver.answer = lambda n: 500 if n % 7 == 0 else 200
    endpoint = add_endpoint(api, org, receiver.url, ["checkin.accepted"])
    total = 300
    with api.app.state.engine.begin() as conn:
        emit_checkins(conn, org, total)
    assert endpoint.id
    settings = settings_of(api, tmp_path, "0.05,0.05,0.05,0.05")
    dispatchers = [Dispatcher(api.app.state.engine, settings) for _ in range(3)]
    stop = threading.Event()
    threads = [threading.Thread(target=d.run_forever, args=(stop,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if count(api, WebhookDelivery, WebhookDelivery.state == "succeeded") == total:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for dispatcher in dispatchers:
            dispatcher.close()
    with Session(api.app.state.engine) as session:
        errors = session.execute(
            select(WebhookAttempt.error).where(WebhookAttempt.status_code.is_(None))
        ).all()
    assert not errors, errors[:3]
    assert count(api, WebhookDelivery, WebhookDelivery.state == "succeeded") == total
    ids = Counter(r["headers"]["webhook-id"] for r in receiver.requests)
    assert len(ids) == total
    assert count(api, WebhookAttempt) == len(receiver.requests)
    with Session(api.app.state.engine) as session:
        per_delivery = session.execute(
            select(WebhookDelivery.attempts, func.count(WebhookAttempt.id))
            .join(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
            .group_by(WebhookDelivery.id, WebhookDelivery.attempts)
        ).all()
    assert all(attempts == logged for attempts, logged in per_delivery)
    assert sum(ids.values()) == len(receiver.requests)


def test_offline_readings_imports_and_conflicts_are_queued(
    api: Api, org: Org, receiver: Receiver
) -> None:
    from tests.server.test_sync import Gate

    setup = setup_event(org)
    add_endpoint(api, org, receiver.url, sorted(EVERY_TYPE))
    imported = org.client.post(
        f"/v1/events/{setup['id']}/attendees/import",
        content=b"first_name,last_name,email,ticket_type\nA,B,a@x.io,general\nC,D,c@x.io,vip\n",
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200 and imported.json()["created"] == 2, imported.text
    person = add_attendee(org, setup["id"], email="walk@example.com")
    org.client.patch(
        f"/v1/events/{setup['id']}/attendees/{person['id']}", json={"status": "revoked"}
    )
    gate = Gate(api, org, "Gate 7")
    reading = gate.reading(setup["id"], setup["gate_a"]["id"], person["qr"])
    registration = {
        "id": str(uuid.uuid4()),
        "event_id": setup["id"],
        "first_name": "Walk",
        "last_name": "In",
        "email": "new@example.com",
        "ticket_type": "general",
        "created_at": gate.now().isoformat(),
        "hlc": "x",
    }
    results = gate.push([reading], [registration])
    conflict_id = results[1]["conflict_id"]
    assert conflict_id
    resolved = org.client.post(
        f"/v1/conflicts/{conflict_id}/resolve", json={"resolution": "accept"}
    )
    assert resolved.status_code == 200, resolved.text
    with Session(api.app.state.engine) as session:
        rows = session.execute(select(WebhookMessage.type, WebhookMessage.body)).all()
    kinds = Counter(t for t, _ in rows)
    assert kinds["attendee.registered"] == 4  # two imported, one by API, one at the door
    assert kinds["conflict.detected"] == kinds["conflict.resolved"] == 1
    assert kinds["checkin.accepted"] == 1 and kinds["attendee.status_changed"] == 1
    checkin = next(json.loads(b)["data"] for t, b in rows if t == "checkin.accepted")
    assert checkin["offline"] is True and checkin["device"] == {"id": gate.id, "name": "Gate 7"}
    sent = datetime.fromisoformat(reading["scanned_at"])
    assert checkin["scanned_at"] == rfc3339(sent), "the original time, as the device scanned"
    door = [json.loads(b)["data"] for t, b in rows if t == "attendee.registered"]
    assert {d["source"] for d in door} == {"import", "api", "door"}


def test_revoking_a_conflicts_ticket_announces_the_status_change(
    api: Api, org: Org, receiver: Receiver
) -> None:
    from tests.server.test_sync import Gate

    setup = setup_event(org)
    add_endpoint(api, org, receiver.url, ["attendee.status_changed", "conflict.resolved"])
    person = add_attendee(org, setup["id"], email="twice@example.com")
    gate_a, gate_b = Gate(api, org, "Gate A"), Gate(api, org, "Gate B")
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    gate_a.push([gate_a.reading(setup["id"], setup["gate_a"]["id"], person["qr"], at=t0)])
    late = gate_b.reading(
        setup["id"], setup["gate_b"]["id"], person["qr"], at=t0 + timedelta(minutes=1)
    )
    conflict_id = gate_b.push([late])[0]["conflict_id"]
    assert conflict_id
    resolved = org.client.post(
        f"/v1/conflicts/{conflict_id}/resolve", json={"resolution": "revoke_ticket"}
    )
    assert resolved.status_code == 200, resolved.text
    with Session(api.app.state.engine) as session:
        rows = session.execute(select(WebhookMessage.type, WebhookMessage.body)).all()
    assert Counter(t for t, _ in rows) == {"attendee.status_changed": 1, "conflict.resolved": 1}
    changed = next(json.loads(b)["data"] for t, b in rows if t == "attendee.status_changed")
    assert changed["previous_status"] == "valid"
    assert changed["attendee"]["id"] == person["id"]
    assert changed["attendee"]["status"] == "revoked"
    assert changed["event"]["id"] == setup["id"]
    fetched = org.client.get(f"/v1/events/{setup['id']}/attendees/{person['id']}").json()
    assert fetched["status"] == "revoked"


@pytest.mark.postgres
def test_worker_processes_share_the_outbox(api: Api, org: Org, receiver: Receiver) -> None:
    if not api.settings.db_url.startswith("postgresql"):
        pytest.skip("worker processes share a PostgreSQL outbox")
    add_endpoint(api, org, receiver.url, ["checkin.accepted"])
    total = 1000
    with api.app.state.engine.begin() as conn:
        emit_checkins(conn, org, total)
    env = {**os.environ, "DOORCHECK_WEBHOOK_ALLOW_PRIVATE": "true"}
    doorcheck = str(Path(sys.executable).with_name("doorcheck"))
    command = [doorcheck, "worker", "--db", api.settings.db_url]
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        receiver.wait_for(total, timeout=60)
        time.sleep(0.5)  # anything sent twice would arrive now
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(timeout=30) == 0
    ids = Counter(r["headers"]["webhook-id"] for r in receiver.requests)
    assert len(ids) == total and max(ids.values()) == 1
    assert count(api, WebhookDelivery, WebhookDelivery.state == "succeeded") == total


def test_a_dispatcher_outlives_a_database_that_is_away(tmp_path: Path) -> None:
    """No database (nothing listens on port 9): the dispatcher logs, waits and keeps trying, and
    still stops cleanly when asked."""
    from sqlalchemy import create_engine

    gone = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"
    engine = create_engine(gone)
    dispatcher = Dispatcher(engine, make_settings(gone, tmp_path, webhook_embedded=False))
    stop = threading.Event()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            dispatcher.run_forever(stop, idle_sleep=0.05)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(2.0)
        assert not raised, raised
    finally:
        stop.set()
        thread.join(timeout=15)
        dispatcher.close()
        engine.dispose()
    assert not thread.is_alive() and not raised, raised


def test_a_claim_takes_the_oldest_due_and_reads_no_more_than_it_needs(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    """Pending and retrying deliveries come in next_attempt_at order, whatever their state;
    not yet due, locked, succeeded and failed ones are left. On SQLite the candidates come off
    the partial index ix_deliveries_due in order (no sort of the whole backlog)."""
    endpoint = add_endpoint(api, org, receiver.url, ["checkin.accepted"])
    engine = api.app.state.engine
    with engine.begin() as conn:
        emit_checkins(conn, org, 12)
        assert outbox.fan_out(conn) == 12
    now = datetime.now(UTC)
    plan = {  # message n -> (state, next attempt in seconds from now, locked for seconds)
        0: ("pending", -50, None),
        1: ("retrying", -70, None),  # the oldest due
        2: ("pending", -60, 30),  # claimed by someone else
        3: ("succeeded", -90, None),
        4: ("failed", -95, None),
        5: ("retrying", 300, None),  # not due yet
        6: ("pending", -40, -5),  # its claim lapsed: due again
    }
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookDelivery, WebhookMessage.body).join(
                WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id
            )
        ).all()
        by_n = {json.loads(body)["data"]["n"]: d for d, body in rows}
        for n, delivery in by_n.items():
            state, due, locked = plan.get(n, ("pending", -10 + n, None))
            delivery.state = state
            delivery.next_attempt_at = now + timedelta(seconds=due)
            delivery.locked_until = now + timedelta(seconds=locked) if locked else None
        ids = {n: d.id for n, d in by_n.items()}
        session.commit()
    dispatcher = Dispatcher(engine, settings_of(api, tmp_path))
    try:
        claimed = [job.delivery_id for job in dispatcher.claim(4)]
        names = {v: k for k, v in ids.items()}
        assert sorted(names[c] for c in claimed) == [0, 1, 6, 7]  # the four oldest due
        assert {job.endpoint_id for job in dispatcher.claim(100)} == {endpoint.id}
        if engine.dialect.name == "sqlite":
            query = dispatcher.candidates(datetime.now(UTC), None, 10)
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            with engine.connect() as conn:
                steps = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            assert any("ix_deliveries_due" in step for step in steps), steps
            assert not any("TEMP B-TREE" in step for step in steps), steps
    finally:
        dispatcher.close()


def test_a_message_is_fanned_out_once_to_the_endpoints_subscribed_when_it_was_written(
    api: Api, org: Org, receiver: Receiver
) -> None:
    """The change's transaction writes the message with its endpoints; fanning out makes one
    delivery each, due at the message's time, and skips an endpoint deleted in between."""
    setup = setup_event(org)
    kept = [add_endpoint(api, org, receiver.url, ["checkin.denied"]) for _ in range(2)]
    deleted = add_endpoint(api, org, receiver.url, ["checkin.denied"])
    scan(org.client, setup["gate_a"]["id"], "nobody")
    assert count(api, WebhookDelivery) == 0 and count(api, WebhookFanout) == 1
    assert org.client.delete(f"/v1/webhooks/{deleted.id}").status_code == 204
    later = add_endpoint(api, org, receiver.url, ["checkin.denied"])  # after the fact: not sent
    engine = api.app.state.engine
    with engine.begin() as conn:
        assert outbox.fan_out(conn) == 1
        assert outbox.fan_out(conn) == 0
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookDelivery, WebhookMessage.created_at).join(
                WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id
            )
        ).all()
    assert sorted(d.endpoint_id for d, _ in rows) == sorted(e.id for e in kept)
    assert all(d.next_attempt_at == at and d.state == "pending" for d, at in rows)
    assert later.id not in {d.endpoint_id for d, _ in rows}
    assert count(api, WebhookFanout) == 0


def test_the_delivery_log_lists_messages_no_dispatcher_has_fanned_out(
    api: Api, org: Org, receiver: Receiver
) -> None:
    setup = setup_event(org)
    endpoint = add_endpoint(api, org, receiver.url, ["checkin.denied"])
    scan(org.client, setup["gate_a"]["id"], "nobody")
    listed = org.client.get(f"/v1/webhooks/{endpoint.id}/deliveries")
    assert listed.status_code == 200, listed.text
    [delivery] = listed.json()["data"]
    assert (delivery["state"], delivery["attempts"], delivery["type"]) == (
        "pending",
        0,
        "checkin.denied",
    )
    assert delivery["attempt_log"] == []
    assert count(api, WebhookFanout) == 0 and receiver.requests == []


def test_a_fan_out_planned_ahead_writes_only_what_is_still_waiting(
    api: Api, org: Org, receiver: Receiver
) -> None:
    """A dispatcher plans its fan-out before taking the write lock; what another took in the
    meantime is not fanned out twice, and an endpoint deleted meanwhile gets nothing."""
    engine = api.app.state.engine
    first, second = (add_endpoint(api, org, receiver.url, ["checkin.accepted"]) for _ in range(2))
    with engine.begin() as conn:
        emit_checkins(conn, org, 4)
    with engine.connect() as conn:
        plan = outbox.plan_fan_out(conn).bind(engine.dialect)
    assert len(plan.message_ids) == 4 and len(plan.deliveries) == 8
    with engine.begin() as conn:  # another dispatcher takes the two oldest
        taken = outbox.plan_fan_out(conn, limit=2)
        assert outbox.apply_fan_out(conn, taken) == (set(taken.message_ids), {first.id, second.id})
    assert org.client.delete(f"/v1/webhooks/{second.id}").status_code == 204
    with engine.begin() as conn:
        messages, endpoints = outbox.apply_fan_out(conn, plan)
    assert messages == set(plan.message_ids) - set(taken.message_ids) and endpoints == {first.id}
    with Session(engine) as session:
        rows = session.execute(select(WebhookDelivery.message_id, WebhookDelivery.endpoint_id))
        pairs = Counter(rows.all())
    assert set(pairs.values()) == {1}, "no delivery twice"
    assert len(pairs) == 2 + 2  # the two taken first (first endpoint left), two now
    assert {endpoint for _, endpoint in pairs} == {first.id}
    assert count(api, WebhookFanout) == 0
