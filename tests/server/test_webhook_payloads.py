"""The webhook message as integrators get it (SPEC section 13): every type, subscribed with the
`*` wildcard, delivered to a real receiver and verified with the `standardwebhooks` library;
the body's `id` is the `webhook-id` header and carries `api_version`; `attendee.*` carry the
whole attendee as the API shows it and `attendee.updated` its `previous` values; the delivery
log filters and the organization's message list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from shared.webhooks import API_VERSION
from sync_server.webhooks.dispatch import Dispatcher
from tests.server.conftest import (
    Api,
    Org,
    Receiver,
    add_attendee,
    assert_error,
    live_api,
    scan,
    setup_event,
)
from tests.server.test_webhook_delivery import EVERY_TYPE, drain, settings_of


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """Loopback receivers allowed; the test drives its own dispatcher."""
    with live_api(
        db_url,
        tmp_path,
        webhook_allow_private=True,
        webhook_retry_schedule="0.2,0.2,0.2",
        webhook_embedded=False,
    ) as api:
        yield api


def _every_type_happens(api: Api, org: Org, setup: dict[str, Any]) -> dict[str, Any]:
    from tests.server.test_sync import Gate

    eid = setup["id"]
    person = add_attendee(org, eid, email="ana@example.com", company=None)
    updated = org.client.patch(
        f"/v1/events/{eid}/attendees/{person['id']}",
        json={"company": "Acme", "ticket_type": "vip", "status": "revoked"},
    )
    assert updated.status_code == 200, updated.text
    other = add_attendee(org, eid, email="bo@example.com")
    scan(org.client, setup["gate_a"]["id"], other["qr"])  # accepted; the zone (capacity 1) fills
    scan(org.client, setup["gate_a"]["id"], person["qr"])  # denied: revoked
    gate_a, gate_b = Gate(api, org, "Gate A"), Gate(api, org, "Gate B")
    third = add_attendee(org, eid, email="cy@example.com")
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    gate_a.push([gate_a.reading(eid, setup["gate_b"]["id"], third["qr"], at=t0)])
    late = gate_b.reading(eid, setup["gate_b"]["id"], third["qr"], at=t0 + timedelta(minutes=1))
    conflict_id = gate_b.push([late])[0]["conflict_id"]
    assert conflict_id
    resolved = org.client.post(
        f"/v1/conflicts/{conflict_id}/resolve", json={"resolution": "accept"}
    )
    assert resolved.status_code == 200, resolved.text
    return {"person": person, "updated": updated.json()}


def test_every_type_verifies_and_carries_its_id_and_version(
    api: Api, org: Org, receiver: Receiver, tmp_path: Path
) -> None:
    setup = setup_event(org, zone_capacity=1)
    created = org.client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["*"], "description": "all"}
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["events"] == ["*"]
    facts = _every_type_happens(api, org, setup)
    assert org.client.post(f"/v1/webhooks/{hook['id']}/test").status_code == 202
    dispatcher = Dispatcher(api.app.state.engine, settings_of(api, tmp_path))
    try:
        drain(
            dispatcher,
            lambda: (
                {json.loads(r["body"])["type"] for r in receiver.requests}
                >= EVERY_TYPE | {"webhook.test"}
            ),
        )
    finally:
        dispatcher.close()
    bodies: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        payload = Webhook(hook["secret"]).verify(request["body"], request["headers"])
        assert payload["id"] == request["headers"]["webhook-id"]
        assert payload["api_version"] == API_VERSION
        assert set(payload) == {"id", "type", "timestamp", "api_version", "data"}
        bodies.setdefault(payload["type"], []).append(payload["data"])
    assert set(bodies) == EVERY_TYPE | {"webhook.test"}

    person = facts["person"]
    [update] = bodies["attendee.updated"]
    as_api = org.client.get(f"/v1/events/{setup['id']}/attendees/{person['id']}").json()
    assert {k: v for k, v in update["attendee"].items() if k != "is_vip"} == as_api
    assert update["attendee"]["is_vip"] is True
    assert update["changed"] == ["company", "status", "ticket_type"]
    assert update["previous"] == {"company": None, "status": "valid", "ticket_type": "general"}
    [status] = bodies["attendee.status_changed"]
    assert status["previous_status"] == "valid" and status["attendee"]["status"] == "revoked"
    registered = {d["attendee"]["email"]: d["attendee"] for d in bodies["attendee.registered"]}
    assert registered["ana@example.com"]["qr"] == person["qr"]
    assert registered["ana@example.com"]["custom_data"] == {}


def test_the_wildcard_is_the_only_non_type_accepted(org: Org) -> None:
    for events in (["*", "checkin.accepted"], ["*"]):
        response = org.client.post(
            "/v1/webhooks", json={"url": "https://example.com/h", "events": events}
        )
        assert response.status_code == 201, response.text
    for bad in (["**"], ["checkin.*"], [""], ["*" * 300]):
        response = org.client.post(
            "/v1/webhooks", json={"url": "https://example.com/h", "events": bad}
        )
        assert_error(response, 422, "validation_error")


def test_delivery_log_and_messages_filter(api: Api, org: Org, receiver: Receiver) -> None:
    setup = setup_event(org)
    hook = org.client.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
    person = add_attendee(org, setup["id"])
    scan(org.client, setup["gate_a"]["id"], person["qr"])
    log = f"/v1/webhooks/{hook['id']}/deliveries"
    everything = org.client.get(log).json()["data"]
    assert {d["type"] for d in everything} == {"attendee.registered", "checkin.accepted"}
    only = org.client.get(log, params={"type": "checkin.accepted"}).json()["data"]
    assert [d["type"] for d in only] == ["checkin.accepted"]
    assert len(org.client.get(log, params={"status": "pending"}).json()["data"]) == 2
    assert org.client.get(log, params={"status": "succeeded"}).json()["data"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert org.client.get(log, params={"since": future}).json()["data"] == []
    assert len(org.client.get(log, params={"until": future}).json()["data"]) == 2
    messages = org.client.get("/v1/webhooks/messages", params={"type": "checkin.accepted"})
    assert messages.status_code == 200, messages.text
    [message] = messages.json()["data"]
    assert message["body"]["id"] == message["id"] and message["body"]["type"] == "checkin.accepted"
    everyone = org.client.get("/v1/webhooks/messages", params={"event_id": setup["id"]}).json()
    assert len(everyone["data"]) == 2
    for bad in (
        {"status": "lost"},
        {"type": "nope"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no offset
        {"since": future, "until": "2020-01-01T00:00:00Z"},
        {"type": "x" * 100},
    ):
        assert_error(org.client.get(log, params=bad), 422, "validation_error")
    other = api.new_org("Other")
    assert other.client.get("/v1/webhooks/messages").json()["data"] == []
    assert_error(other.client.get(log), 404, "not_found")
