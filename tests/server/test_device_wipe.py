"""Remote wipe of a lost gate over real HTTP (SQLite and PostgreSQL): the admin's order, the 410
every device request answers until the gate confirms, the confirmation (also from a gate that
wiped itself or was revoked), the pending-uploads count a gate reports, and the CLI."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.sync import PENDING_HEADER
from tests.server.conftest import Api, Org, add_attendee, api_routes, assert_error, setup_event
from tests.server.test_cli_devices import ok, one_line_error, run
from tests.server.test_sync import Gate

NOT_DEVICE_ROUTES = {"healthz", "readyz", "enroll_device", "confirm_device_wipe"}


@pytest.fixture
def venue(api: Api, org: Org) -> dict[str, Any]:
    s = setup_event(org)
    s["ana"] = add_attendee(org, s["id"], email="ana@example.com")
    return s


def device(org: Org, device_id: str) -> dict[str, Any]:
    response = org.client.get(f"/v1/devices/{device_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def listed(org: Org, device_id: str) -> dict[str, Any]:
    found = [d for d in org.client.get("/v1/devices").json()["data"] if d["id"] == device_id]
    assert len(found) == 1
    return dict(found[0])


def confirm(gate: Gate, body: Any) -> httpx.Response:
    return gate.client.post("/v1/sync/wiped", json=body)


def wiped(response: httpx.Response) -> None:
    error = assert_error(response, 410, "device_wiped")
    assert "POST /v1/sync/wiped" in error["message"]


def test_the_wipe_lifecycle(api: Api, org: Org, venue: dict[str, Any]) -> None:
    gate, other = Gate(api, org, "Lost tablet"), Gate(api, org, "Gate B")
    assert gate.client.get(f"/v1/sync/events/{venue['id']}/pull").status_code == 200
    fresh = device(org, gate.id)
    for field in ("wipe_requested_at", "wipe_confirmed_at", "wipe_reason", "pending_uploads"):
        assert fresh[field] is None, field

    ordered = org.client.post(f"/v1/devices/{gate.id}/wipe")
    assert ordered.status_code == 202, ordered.text
    body = ordered.json()
    assert body["object"] == "device" and body["id"] == gate.id
    requested = body["wipe_requested_at"]
    assert requested is not None and body["wipe_confirmed_at"] is None
    assert body["status"] == "active"  # until the device confirms
    again = org.client.post(f"/v1/devices/{gate.id}/wipe")
    assert again.status_code == 202 and again.json()["wipe_requested_at"] == requested
    assert listed(org, gate.id)["wipe_requested_at"] == requested

    # At its next contact, whatever it asks: 410, and nothing it sends is taken.
    reading = gate.reading(venue["id"], venue["gate_a"]["id"], venue["ana"]["qr"])
    pushed = gate.client.post(
        "/v1/sync/push",
        json={"device_time": gate.now().isoformat(), "scans": [reading]},
        headers={PENDING_HEADER: "4"},
    )
    wiped(pushed)
    wiped(gate.client.get("/v1/sync/events"))
    wiped(gate.client.get(f"/v1/sync/events/{venue['id']}/pull", params={"wait": 5}))
    wiped(
        gate.client.post(
            f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": venue["ana"]["qr"]}
        )
    )
    assert org.client.get(f"/v1/events/{venue['id']}/scans").json()["data"] == []
    heard = device(org, gate.id)
    assert heard["pending_uploads"] == 4 and heard["pending_reported_at"] is not None
    assert other.client.get("/v1/sync/events").status_code == 200  # only that device

    confirmed = confirm(gate, {"reason": "organizer", "pending": 3})
    assert confirmed.status_code == 200, confirmed.text
    answer = confirmed.json()
    assert answer["object"] == "device_wipe" and answer["device_id"] == gate.id
    assert answer["reason"] == "organizer" and answer["pending_uploads"] == 3
    assert datetime.fromisoformat(answer["confirmed_at"]) >= datetime.fromisoformat(requested)
    shown = device(org, gate.id)
    assert shown["wipe_confirmed_at"] == answer["confirmed_at"]
    assert shown["wipe_reason"] == "organizer" and shown["pending_uploads"] == 3
    assert shown["status"] == "revoked" and shown["wipe_requested_at"] == requested

    # The token is dead everywhere else; a retried confirmation answers the first one.
    assert_error(gate.client.get("/v1/sync/events"), 401, "invalid_api_key")
    assert_error(
        gate.client.post("/v1/sync/push", json={"device_time": "x"}), 401, "invalid_api_key"
    )
    retry = confirm(gate, {"reason": "pin", "pending": 99})
    assert retry.status_code == 200 and retry.json() == answer
    assert device(org, gate.id)["pending_uploads"] == 3
    assert org.client.post(f"/v1/devices/{gate.id}/wipe").json()["wipe_requested_at"] == requested


def test_every_device_route_answers_410_once_a_wipe_is_ordered(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    gate = Gate(api, org, "Lost phone")
    assert org.client.post(f"/v1/devices/{gate.id}/wipe").status_code == 202
    checked = []
    for method, path, operation_id in api_routes(api.app):
        if operation_id in NOT_DEVICE_ROUTES:
            continue
        url = re.sub(r"\{\w+\}", "x_missing", path)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        response = gate.client.request(method, url, json=body)
        assert response.status_code == 410, (method, path, response.text)
        wiped(response)
        checked.append(operation_id)
    assert {"sync_events", "sync_pull", "sync_push", "scan_online"} <= set(checked)
    assert len(checked) >= 40
    # The API key of an admin is not a device: nothing changes for it.
    assert org.client.get("/v1/sync/events").status_code == 200


@pytest.mark.parametrize("reason", ["pin", "expired", "organizer"])
def test_a_gate_that_wiped_itself_reports_it_unasked(
    api: Api, org: Org, venue: dict[str, Any], reason: str
) -> None:
    gate = Gate(api, org, "Gate C")
    response = confirm(gate, {"reason": reason})
    assert response.status_code == 200, response.text
    assert response.json()["reason"] == reason and response.json()["pending_uploads"] == 0
    shown = device(org, gate.id)
    assert shown["wipe_requested_at"] is None and shown["wipe_confirmed_at"] is not None
    assert shown["wipe_reason"] == reason and shown["status"] == "revoked"
    assert_error(gate.client.get("/v1/sync/events"), 401, "invalid_api_key")


def test_a_revoked_gate_may_still_report_its_wipe_and_nothing_else(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    gate = Gate(api, org, "Gate D")
    assert org.client.delete(f"/v1/devices/{gate.id}").status_code == 204
    revoked_at = device(org, gate.id)["revoked_at"]
    for method, path in (
        ("GET", "/v1/sync/events"),
        ("GET", f"/v1/sync/events/{venue['id']}/pull"),
        ("POST", "/v1/sync/push"),
        ("POST", f"/v1/checkpoints/{venue['gate_a']['id']}/scans"),
    ):
        assert_error(gate.client.request(method, path, json={}), 401, "invalid_api_key")
    response = confirm(gate, {"reason": "revoked", "pending": 2})
    assert response.status_code == 200, response.text
    shown = device(org, gate.id)
    assert shown["wipe_reason"] == "revoked" and shown["pending_uploads"] == 2
    assert shown["revoked_at"] == revoked_at  # revoked when it was, not again
    # A wipe ordered after the revocation is recorded; the confirmed device stays dead (401).
    assert org.client.post(f"/v1/devices/{gate.id}/wipe").status_code == 202
    assert_error(gate.client.get("/v1/sync/events"), 401, "invalid_api_key")


def test_a_revoked_gate_ordered_to_wipe_hears_the_order(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    gate = Gate(api, org, "Gate E")
    assert org.client.delete(f"/v1/devices/{gate.id}").status_code == 204
    assert org.client.post(f"/v1/devices/{gate.id}/wipe").status_code == 202
    wiped(gate.client.get("/v1/sync/events"))  # more precise than 401: it was wiped
    assert confirm(gate, {"reason": "organizer"}).status_code == 200
    assert_error(gate.client.get("/v1/sync/events"), 401, "invalid_api_key")


def test_wiping_a_device_never_enrolled_spends_its_code(api: Api, org: Org) -> None:
    created = org.client.post("/v1/devices", json={"name": "Spare"}).json()
    ordered = org.client.post(f"/v1/devices/{created['id']}/wipe")
    assert ordered.status_code == 202 and ordered.json()["status"] == "pending"
    late = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": created["enrollment_code"]})
    assert_error(late, 401, "invalid_enrollment_code")


def test_who_may_order_and_confirm_a_wipe(api: Api, org: Org, venue: dict[str, Any]) -> None:
    gate = Gate(api, org, "Gate F")
    rival = api.new_org("Rival")
    theirs = Gate(api, rival, "Their gate")
    foreign = org.client.post(f"/v1/devices/{theirs.id}/wipe")
    missing = org.client.post("/v1/devices/dev_nope/wipe")
    assert_error(foreign, 404, "not_found")
    assert foreign.json() == missing.json()
    assert_error(org.client.get(f"/v1/devices/{theirs.id}"), 404, "not_found")
    assert_error(org.client.post(f"/v1/devices/{'x' * 500}/wipe"), 404, "not_found")
    assert device(rival, theirs.id)["wipe_requested_at"] is None
    assert theirs.client.get("/v1/sync/events").status_code == 200

    for scopes in (["read"], ["write"], ["webhooks"]):
        with org.as_key(org.key(*scopes)) as limited:
            assert_error(limited.post(f"/v1/devices/{gate.id}/wipe"), 403, "insufficient_scope")
    assert_error(gate.client.post(f"/v1/devices/{gate.id}/wipe"), 403, "insufficient_scope")
    assert_error(httpx.post(f"{api.url}/v1/devices/{gate.id}/wipe"), 401, "invalid_api_key")

    # Only a device confirms, and only for itself.
    report = {"reason": "organizer"}
    assert_error(org.client.post("/v1/sync/wiped", json=report), 403, "insufficient_scope")
    assert_error(httpx.post(f"{api.url}/v1/sync/wiped", json=report), 401, "invalid_api_key")
    bad_token = {"Authorization": "Bearer dk_dev_" + "A" * 43}
    assert_error(
        httpx.post(f"{api.url}/v1/sync/wiped", json=report, headers=bad_token),
        401,
        "invalid_api_key",
    )
    assert device(org, gate.id)["wipe_confirmed_at"] is None
    rival.client.close()


MALFORMED: list[bytes] = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'{"pending": 1}',
    b'{"reason": "bored"}',
    b'{"reason": "PIN"}',
    b'{"reason": null}',
    b'{"reason": 1}',
    b'{"reason": "pin", "pending": -1}',
    b'{"reason": "pin", "pending": 10000001}',
    b'{"reason": "pin", "pending": 1e400}',
    b'{"reason": "pin", "pending": 2.5}',
    b'{"reason": "pin", "pending": "3"}',
    b'{"reason": "pin", "pending": true}',
    b'{"reason": "pin\\u0000"}',
    b"\xff\xfe{}",
    b"[" * 100_000 + b"]" * 100_000,
]


def test_malformed_wipe_reports_change_nothing(api: Api, org: Org, venue: dict[str, Any]) -> None:
    gate = Gate(api, org, "Gate G")
    for raw in MALFORMED:
        response = gate.client.post(
            "/v1/sync/wiped", content=raw, headers={"Content-Type": "application/json"}
        )
        error = assert_error(response, 422, "validation_error")
        assert error["details"] and error["details"][0]["field"] == "body", raw[:40]
    shown = device(org, gate.id)
    assert shown["wipe_confirmed_at"] is None and shown["status"] == "active"
    assert gate.client.get("/v1/sync/events").status_code == 200
    # unknown fields are ignored (the wire contract); the keep-alive connection still works
    extra = gate.client.post("/v1/sync/wiped", json={"reason": "pin", "pending": 1, "why": "x"})
    assert extra.status_code == 200, extra.text


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_wipe_from_the_command_line(api: Api, org: Org, tmp_path: Path) -> None:
    remote = ("--server", api.url, "--api-key", org.admin_key)
    gate = Gate(api, org, "Gate J")
    done = run("devices", "wipe", gate.id, *remote, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert gate.id in done.stdout and "next contact" in done.stdout
    requested = device(org, gate.id)["wipe_requested_at"]
    assert requested is not None
    wiped(gate.client.get("/v1/sync/events"))
    again = ok(run("devices", "wipe", gate.id, *remote, "--json", cwd=tmp_path))
    assert again["id"] == gate.id and again["wipe_requested_at"] == requested
    table = run("devices", "list", *remote, cwd=tmp_path)
    assert table.returncode == 0 and "not yet confirmed" in table.stdout, table.stdout

    assert confirm(gate, {"reason": "organizer", "pending": 5}).status_code == 200
    table = run("devices", "list", *remote, cwd=tmp_path)
    assert "organizer, 5 uploads lost" in table.stdout, table.stdout
    done = run("devices", "wipe", gate.id, *remote, cwd=tmp_path)
    assert done.returncode == 0 and "already wiped" in done.stdout, done.stdout
    one_line_error(run("devices", "wipe", "dev_nope", *remote, cwd=tmp_path), 1, "dev_nope")
    reader = ("--server", api.url, "--api-key", org.key("read"))
    one_line_error(run("devices", "wipe", gate.id, *reader, cwd=tmp_path), 1, "insufficient_scope")

    # On the database directly, the same service and the same answers.
    local = ("--db", api.settings.db_url, "--org", org.id)
    second = Gate(api, org, "Gate K")
    shown = ok(run("devices", "wipe", second.id, *local, "--json", cwd=tmp_path))
    assert shown["wipe_requested_at"] is not None and shown["wipe_confirmed_at"] is None
    wiped(second.client.get("/v1/sync/events"))
    one_line_error(run("devices", "wipe", "dev_nope", *local, cwd=tmp_path), 1, "dev_nope")
    other = api.new_org("Other")
    theirs = Gate(api, other, "Their gate")
    one_line_error(run("devices", "wipe", theirs.id, *local, cwd=tmp_path), 1, theirs.id)
    assert theirs.client.get("/v1/sync/events").status_code == 200
    listed_json = {d["id"]: d for d in ok(run("devices", "list", *local, "--json", cwd=tmp_path))}
    assert listed_json[gate.id]["wipe_reason"] == "organizer"
    assert listed_json[gate.id]["pending_uploads"] == 5
    other.client.close()
