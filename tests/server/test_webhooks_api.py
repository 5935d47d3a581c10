"""The webhook endpoints API over real HTTP: CRUD, the secret shown once, rotation, the catalog,
test messages, the delivery log and replays, the SSRF guard on URLs, scopes and hostile input."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.webhooks import new_secret, sign, signature_headers, verify
from sync_server.app import create_app
from sync_server.db import session_scope
from sync_server.migrate import upgrade
from sync_server.models import WebhookAttempt
from sync_server.models.base import new_id
from sync_server.webhooks.payloads import CATALOG, EVENT_TYPES
from tests.conftest import free_port, serve
from tests.server.conftest import Api, Org, assert_error, make_settings, setup_event

ROOT = Path(__file__).resolve().parents[2]
URL = "https://hooks.example.com/doorcheck"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")
PUBLIC_FIELDS = {
    "object",
    "id",
    "url",
    "events",
    "event_ids",
    "description",
    "active",
    "disabled_reason",
    "failing_since",
    "created_at",
    "updated_at",
}
SPEC_TYPES = {
    "checkin.accepted",
    "checkin.denied",
    "attendee.registered",
    "attendee.updated",
    "attendee.status_changed",
    "conflict.detected",
    "conflict.resolved",
    "zone.capacity_reached",
    "webhook.test",
}
REFUSED_BY_DEFAULT = [
    "http://127.0.0.1:9000/hook",
    "http://localhost:9000/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://[::1]:9000/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
]


def _create(org: Org, **fields: Any) -> dict[str, Any]:
    body = {"url": URL, "events": ["checkin.accepted"], **fields}
    response = org.client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_read_list_update_delete(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    created = _create(
        org,
        events=["checkin.accepted", "checkin.denied", "checkin.accepted"],
        event_ids=[s["id"]],
        description="CRM push",
    )
    secret = created.pop("secret")
    assert SECRET.fullmatch(secret) and len(base64.b64decode(secret[6:])) == 32
    assert set(created) == PUBLIC_FIELDS
    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["events"] == ["checkin.accepted", "checkin.denied"]  # duplicates dropped
    assert (created["url"], created["event_ids"], created["description"]) == (
        URL,
        [s["id"]],
        "CRM push",
    )
    assert (created["active"], created["disabled_reason"], created["failing_since"]) == (
        True,
        None,
        None,
    )
    hook = f"/v1/webhooks/{created['id']}"

    # The secret is never shown again.
    read = c.get(hook)
    assert read.status_code == 200 and read.json() == created
    listed = c.get("/v1/webhooks")
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert [w["id"] for w in listed.json()["data"]] == [created["id"]]
    for text in (read.text, listed.text):
        assert secret not in text and secret[6:20] not in text and "secret" not in text

    # A second one lists first (newest first) and pages.
    second = _create(org, url="https://other.example.com/in", events=["zone.capacity_reached"])
    assert second["secret"] != secret
    page = c.get("/v1/webhooks", params={"limit": 1}).json()
    assert [w["id"] for w in page["data"]] == [second["id"]] and page["has_more"]
    rest = c.get("/v1/webhooks", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [w["id"] for w in rest["data"]] == [created["id"]] and not rest["has_more"]

    # PATCH changes only what it names.
    changed = c.patch(hook, json={"description": None, "events": ["attendee.registered"]})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["description"] is None and after["events"] == ["attendee.registered"]
    assert after["url"] == URL and after["event_ids"] == [s["id"]]
    assert after["updated_at"] >= created["updated_at"]
    assert c.patch(hook, json={"event_ids": []}).json()["event_ids"] == []  # [] = all events
    assert c.patch(hook, json={"url": "https://new.example.com/x"}).json()["url"] == (
        "https://new.example.com/x"
    )
    assert c.patch(hook, json={"active": False}).json()["active"] is False
    assert "secret" not in c.patch(hook, json={}).json()

    assert c.delete(hook).status_code == 204
    assert_error(c.get(hook), 404, "not_found")
    assert_error(c.delete(hook), 404, "not_found")
    assert [w["id"] for w in c.get("/v1/webhooks").json()["data"]] == [second["id"]]


def test_reactivating_clears_why_it_was_disabled(api: Api, org: Org) -> None:
    from sync_server.models import WebhookEndpoint

    hook = _create(org)
    with session_scope(api.app.state.engine) as session:
        row = session.get(WebhookEndpoint, hook["id"])
        assert row is not None
        row.active = False
        row.disabled_reason = "The endpoint answered 410 Gone"
        row.failing_since = row.created_at
        session.add(row)
        session.commit()
    disabled = org.client.get(f"/v1/webhooks/{hook['id']}").json()
    assert disabled["active"] is False and disabled["disabled_reason"].startswith("The endpoint")
    assert disabled["failing_since"] is not None
    # Another change leaves the reason in place; turning it on clears it.
    kept = org.client.patch(f"/v1/webhooks/{hook['id']}", json={"description": "x"}).json()
    assert kept["disabled_reason"] is not None
    again = org.client.patch(f"/v1/webhooks/{hook['id']}", json={"active": True}).json()
    assert (again["active"], again["disabled_reason"], again["failing_since"]) == (True, None, None)


def test_catalog_covers_every_type(api: Api, org: Org) -> None:
    response = org.client.get("/v1/webhooks/catalog")
    assert response.status_code == 200, response.text
    entries = response.json()["data"]
    assert {e["type"] for e in entries} == SPEC_TYPES == EVENT_TYPES == set(CATALOG)
    for entry in entries:
        assert entry["description"] and isinstance(entry["example"], dict) and entry["example"]
        assert len(response.text) < 20_000 * len(entries)
    checkin = next(e["example"] for e in entries if e["type"] == "checkin.accepted")
    assert {
        "scan_id",
        "event",
        "checkpoint",
        "zone",
        "direction",
        "attendee",
        "scanned_at",
        "received_at",
        "device",
        "operator",
        "offline",
        "reason",
    } <= set(checkin)
    assert {"id", "first_name", "last_name", "email", "ticket_type", "tags", "is_vip"} <= set(
        checkin["attendee"]
    )


def test_rotating_the_secret(api: Api, org: Org) -> None:
    hook = _create(org)
    old = hook["secret"]
    before = datetime.now(UTC)
    rotated = org.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert SECRET.fullmatch(body["secret"]) and body["secret"] != old
    until = datetime.fromisoformat(body["previous_secret_until"].replace("Z", "+00:00"))
    assert before + timedelta(hours=24) <= until <= datetime.now(UTC) + timedelta(hours=24)
    assert set(body) == PUBLIC_FIELDS | {"secret", "previous_secret_until"}
    read = org.client.get(f"/v1/webhooks/{hook['id']}").text
    assert body["secret"] not in read and old not in read
    # Both secrets are real keys: a signature made with both verifies under either.
    signature = sign("msg_1", 1_700_000_000, b"{}", [body["secret"], old])
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature,
    }
    for secret in (old, body["secret"]):
        verify(headers, b"{}", secret, now=1_700_000_000)
    again = org.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret").json()
    assert again["secret"] not in (old, body["secret"])


def test_test_message_deliveries_and_replay(api: Api, org: Org) -> None:
    c = org.client
    hook = _create(org)
    queued = c.post(f"/v1/webhooks/{hook['id']}/test")
    assert queued.status_code == 202, queued.text
    message_id = queued.json()["message_id"]
    assert message_id.startswith("msg_")

    page = c.get(f"/v1/webhooks/{hook['id']}/deliveries")
    assert page.status_code == 200, page.text
    [delivery] = page.json()["data"]
    assert delivery["id"].startswith("dlv_") and delivery["object"] == "webhook_delivery"
    assert (delivery["message_id"], delivery["type"], delivery["endpoint_id"]) == (
        message_id,
        "webhook.test",
        hook["id"],
    )
    assert delivery["state"] in ("pending", "retrying", "succeeded", "failed")
    for name in ("attempts", "next_attempt_at", "last_status_code", "last_error", "attempt_log"):
        assert name in delivery

    # Each logged attempt is shown, oldest first (written here as a dispatcher would).
    with session_scope(api.app.state.engine) as session:
        for status, excerpt, error in ((None, None, "connection refused"), (503, "busy", None)):
            session.add(
                WebhookAttempt(
                    id=new_id("wat"),
                    delivery_id=delivery["id"],
                    status_code=status,
                    duration_ms=4242,
                    response_excerpt=excerpt,
                    error=error,
                )
            )
            session.commit()
    log = c.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"][0]["attempt_log"]
    mine = [a for a in log if a["duration_ms"] == 4242]
    assert [(a["status_code"], a["response_excerpt"], a["error"]) for a in mine] == [
        (None, None, "connection refused"),
        (503, "busy", None),
    ]
    assert set(mine[0]) == {
        "status_code",
        "duration_ms",
        "response_excerpt",
        "error",
        "attempted_at",
    }

    replayed = c.post(f"/v1/webhooks/deliveries/{delivery['id']}/replay")
    assert replayed.status_code == 202, replayed.text
    new_delivery = replayed.json()["delivery_id"]
    assert new_delivery.startswith("dlv_") and new_delivery != delivery["id"]
    rows = c.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
    assert {d["id"] for d in rows} == {delivery["id"], new_delivery}
    assert {d["message_id"] for d in rows} == {message_id}  # the same webhook-id
    assert rows[0]["id"] == new_delivery  # newest first

    assert_error(c.post("/v1/webhooks/deliveries/dlv_missing/replay"), 404, "not_found")
    assert_error(c.post(f"/v1/webhooks/deliveries/{'d' * 41}/replay"), 404, "not_found")
    assert_error(c.post("/v1/webhooks/we_missing/test"), 404, "not_found")
    assert_error(c.get("/v1/webhooks/we_missing/deliveries"), 404, "not_found")
    # Deleting the endpoint takes its deliveries along.
    assert c.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert_error(c.post(f"/v1/webhooks/deliveries/{delivery['id']}/replay"), 404, "not_found")


def _field_error(response: httpx.Response, field: str) -> dict[str, Any]:
    error = assert_error(response, 422, "validation_error")
    fields = {d["field"] for d in error["details"]}
    assert any(f == field or f.startswith(f"{field}.") for f in fields), error
    return error


@pytest.mark.parametrize("url", REFUSED_BY_DEFAULT)
def test_private_urls_are_refused_by_default(api: Api, org: Org, url: str) -> None:
    assert api.settings.webhook_allow_private is False
    error = _field_error(
        org.client.post("/v1/webhooks", json={"url": url, "events": ["webhook.test"]}), "url"
    )
    assert "refused" in error["message"]
    assert re.search("private|loopback|link-local|CGNAT|unique-local|unspecified", error["message"])
    hook = _create(org)
    _field_error(org.client.patch(f"/v1/webhooks/{hook['id']}", json={"url": url}), "url")
    assert org.client.get(f"/v1/webhooks/{hook['id']}").json()["url"] == URL


@pytest.fixture
def private_api(db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A server configured with DOORCHECK_WEBHOOK_ALLOW_PRIVATE=true and an admin client."""
    settings = make_settings(db_url, tmp_path, webhook_allow_private=True)
    app = create_app(settings)
    upgrade(app.state.engine)
    live = serve(app)
    api = Api(app, live, settings)
    org = api.new_org("Intranet")
    try:
        yield org.client
    finally:
        org.client.close()
        live.stop()
        app.state.engine.dispose()


def test_private_urls_are_allowed_when_configured(private_api: httpx.Client) -> None:
    for url in REFUSED_BY_DEFAULT:
        response = private_api.post("/v1/webhooks", json={"url": url, "events": ["webhook.test"]})
        assert response.status_code == 201, (url, response.text)
    # Only the address check is relaxed: a bad scheme or userinfo is still refused.
    for url in ("ftp://10.0.0.1/", "http://u:p@10.0.0.1/"):
        body = {"url": url, "events": ["webhook.test"]}
        _field_error(private_api.post("/v1/webhooks", json=body), "url")


def test_invalid_bodies(api: Api, org: Org) -> None:
    c = org.client
    other = api.new_org("Rival")
    theirs = setup_event(other)["id"]
    mine = setup_event(org)["id"]
    hostile_url = "https://hooks.example.com/" + "a" * 10_000
    cases: list[tuple[dict[str, Any], str]] = [
        ({"url": "ftp://hooks.example.com/", "events": ["checkin.accepted"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["checkin.accepted"]}, "url"),
        ({"url": "file:///etc/passwd", "events": ["checkin.accepted"]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/", "events": ["checkin.accepted"]}, "url"),
        ({"url": "https:///nohost", "events": ["checkin.accepted"]}, "url"),
        ({"url": "not a url", "events": ["checkin.accepted"]}, "url"),
        ({"url": hostile_url, "events": ["checkin.accepted"]}, "url"),
        ({"url": "https://hooks.example.com/\u0000", "events": ["checkin.accepted"]}, "url"),
        ({"url": "", "events": ["checkin.accepted"]}, "url"),
        ({"url": 5, "events": ["checkin.accepted"]}, "url"),
        ({"events": ["checkin.accepted"]}, "url"),
        ({"url": URL}, "events"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["checkin.exploded"]}, "events"),
        ({"url": URL, "events": "checkin.accepted"}, "events"),
        ({"url": URL, "events": ["checkin.accepted\u0000"]}, "events"),
        ({"url": URL, "events": ["checkin.accepted"], "event_ids": [theirs]}, "event_ids"),
        (
            {"url": URL, "events": ["checkin.accepted"], "event_ids": [mine, "evt_nope"]},
            "event_ids",
        ),
        ({"url": URL, "events": ["checkin.accepted"], "event_ids": ["e" * 41]}, "event_ids"),
        ({"url": URL, "events": ["checkin.accepted"], "description": "d" * 501}, "description"),
        ({"url": URL, "events": ["checkin.accepted"], "active": "maybe"}, "active"),
        ({"url": URL, "events": ["checkin.accepted"], "secret": "whsec_mine"}, "secret"),
    ]
    for body, field in cases:
        response = c.post("/v1/webhooks", json=body)
        _field_error(response, field)
        assert "Traceback" not in response.text
    # A foreign event reads exactly like a missing one.
    foreign = c.post(
        "/v1/webhooks", json={"url": URL, "events": ["webhook.test"], "event_ids": [theirs]}
    )
    missing = c.post(
        "/v1/webhooks", json={"url": URL, "events": ["webhook.test"], "event_ids": ["evt_missing"]}
    )
    assert foreign.json()["error"]["message"].replace(theirs, "X") == missing.json()["error"][
        "message"
    ].replace("evt_missing", "X")
    assert_error(
        c.post("/v1/webhooks", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert c.get("/v1/webhooks").json()["data"] == []  # nothing was created

    hook = _create(org)
    path = f"/v1/webhooks/{hook['id']}"
    patches: list[tuple[dict[str, Any], str]] = [
        ({"url": None}, "body"),
        ({"events": None}, "body"),
        ({"active": None}, "body"),
        ({"events": ["nope"]}, "events"),
        ({"event_ids": [theirs]}, "event_ids"),
        ({"url": hostile_url}, "url"),
        ({"url": "http://[::1]/"}, "url"),
        ({"secret": "whsec_x"}, "secret"),
    ]
    for patch, field in patches:
        _field_error(c.patch(path, json=patch), field)
    assert c.get(path).json() == {k: v for k, v in hook.items() if k != "secret"}
    for weird in ("x" * 5000, "we_%00", "..%2f..%2fetc"):
        response = c.get(f"/v1/webhooks/{weird}")
        assert response.status_code in (404, 422), response.text
    assert_error(c.get("/v1/webhooks", params={"cursor": "garbage!"}), 422, "validation_error")
    other.client.close()


def test_scopes(api: Api, org: Org) -> None:
    hook = _create(org)
    hooks = org.as_key(org.key("webhooks"))
    created = hooks.post("/v1/webhooks", json={"url": URL, "events": ["webhook.test"]})
    assert created.status_code == 201, created.text
    assert hooks.get(f"/v1/webhooks/{hook['id']}").status_code == 200
    assert hooks.post(f"/v1/webhooks/{hook['id']}/test").status_code == 202
    paths = [
        ("GET", "/v1/webhooks/catalog"),
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("PATCH", f"/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
        ("POST", f"/v1/webhooks/{hook['id']}/test"),
        ("POST", f"/v1/webhooks/{hook['id']}/rotate-secret"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("POST", "/v1/webhooks/deliveries/dlv_x/replay"),
    ]
    for scopes in (["read"], ["write"], ["read", "write"]):
        with org.as_key(org.key(*scopes)) as client:
            for method, path in paths:
                body = (
                    {"url": URL, "events": ["webhook.test"]}
                    if method in ("POST", "PATCH")
                    else None
                )
                error = assert_error(
                    client.request(method, path, json=body), 403, "insufficient_scope"
                )
                assert "webhooks" in error["message"]
    # Refused calls changed nothing.
    assert org.client.get(f"/v1/webhooks/{hook['id']}").status_code == 200
    assert len(org.client.get("/v1/webhooks").json()["data"]) == 2
    hooks.close()


def test_other_organizations_see_nothing(api: Api, org: Org) -> None:
    hook = _create(org)
    assert org.client.post(f"/v1/webhooks/{hook['id']}/test").status_code == 202
    delivery = org.client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"][0]["id"]
    rival = api.new_org("Rival")
    r = rival.client
    assert r.get("/v1/webhooks").json()["data"] == []
    for method, path in [
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("PATCH", f"/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
        ("POST", f"/v1/webhooks/{hook['id']}/test"),
        ("POST", f"/v1/webhooks/{hook['id']}/rotate-secret"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("POST", f"/v1/webhooks/deliveries/{delivery}/replay"),
    ]:
        body = {"description": "mine now"} if method == "PATCH" else None
        foreign = r.request(method, path, json=body)
        missing = r.request(
            method,
            path.replace(hook["id"], "we_missing").replace(delivery, "dlv_missing"),
            json=body,
        )
        assert_error(foreign, 404, "not_found")
        assert foreign.json() == missing.json(), path
    read = org.client.get(f"/v1/webhooks/{hook['id']}").json()
    assert (read["description"], read["url"], read["active"]) == (None, URL, True)
    assert len(org.client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]) == 1
    rival.client.close()


def _receiver_module() -> Any:
    spec = importlib.util.spec_from_file_location("receiver", ROOT / "examples" / "receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_receiver_verifies_like_standardwebhooks() -> None:
    from standardwebhooks import Webhook

    receiver = _receiver_module()
    secret = new_secret(bytes(range(32)))
    body = b'{"type":"webhook.test","timestamp":"2026-06-12T18:04:11.250Z","data":{}}'
    now = int(time.time())
    headers = signature_headers("msg_abc", now, body, [secret])
    Webhook(secret).verify(body, headers)  # the independent implementation agrees
    assert receiver.verify(headers, body, [secret], now)
    rotated = signature_headers("msg_abc", now, body, [new_secret(b"\x01" * 32), secret])
    assert receiver.verify(rotated, body, [secret], now)
    assert not receiver.verify(headers, body + b" ", [secret], now)
    assert not receiver.verify(headers, body, [new_secret(b"\x02" * 32)], now)
    assert not receiver.verify(headers, body, [secret], now + 301)
    assert not receiver.verify({**headers, "webhook-id": "msg_other"}, body, [secret], now)


def test_example_receiver_gets_a_test_message_end_to_end(
    private_api: httpx.Client, tmp_path: Path
) -> None:
    port = free_port()
    hook = private_api.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/in", "events": ["webhook.test"]}
    ).json()
    env = {**os.environ, "WEBHOOK_SECRET": hook["secret"], "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "receiver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "receiver.py"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 10
        while "listening" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        message_id = private_api.post(f"/v1/webhooks/{hook['id']}/test").json()["message_id"]
        deadline = time.monotonic() + 20
        while message_id not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"{message_id} webhook.test" in log.read_text(), log.read_text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [delivery] = private_api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
            if delivery["state"] == "succeeded":
                break
            time.sleep(0.1)
        assert delivery["state"] == "succeeded", delivery
        assert [a["status_code"] for a in delivery["attempt_log"]] == [204]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_integrator_docs_show_the_catalog_as_served() -> None:
    doc = (ROOT / "docs" / "webhooks.md").read_text()
    for event_type in CATALOG.values():
        heading = f"### `{event_type.type}`"
        assert heading in doc, heading
        block = doc.split(heading, 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
        assert json.loads(block) == event_type.example, event_type.type
    for needed in ("webhook-id", "webhook-timestamp", "webhook-signature", "410", "5 days"):
        assert needed in doc, needed
