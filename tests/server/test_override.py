"""Supervisor override on the server (SPEC section 11), over real HTTP on SQLite and PostgreSQL:
the event's override PIN set through the API (write-only, hashed, 422 for a bad one), carried to
gates by sync, and a pushed override reading stored, counted, announced as `checkin.accepted`
with `override: true`, and never a conflict by itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from shared.override import verify_pin
from tests.server.conftest import (
    Api,
    Org,
    Receiver,
    add_attendee,
    assert_error,
    live_api,
    setup_event,
)
from tests.server.test_sync import Gate as Device


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """The server delivering webhooks by itself, to loopback receivers."""
    with live_api(
        db_url, tmp_path, webhook_allow_private=True, webhook_retry_schedule="0.2,0.2"
    ) as api:
        yield api


def _event(org: Org, eid: str) -> dict[str, Any]:
    response = org.client.get(f"/v1/events/{eid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_pin_is_write_only_hashed_and_reaches_gates(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid, c = s["id"], org.client
    assert _event(org, eid)["override_pin_set"] is False
    set_pin = c.patch(f"/v1/events/{eid}", json={"override_pin": "2468"})
    assert set_pin.status_code == 200, set_pin.text
    assert set_pin.json()["override_pin_set"] is True
    for body in (set_pin.text, c.get(f"/v1/events/{eid}").text, c.get("/v1/events").text):
        assert "2468" not in body and "scrypt" not in body and "override_pin_hash" not in body
    device = Device(api, org, "Door 1")
    page = device.client.get(f"/v1/sync/events/{eid}/pull").json()
    assert verify_pin("2468", page["event"]["override_pin_hash"])
    listed = device.client.get("/v1/sync/events").json()["data"]
    assert verify_pin("2468", listed[0]["override_pin_hash"])
    head = page["cursor"]
    cleared = c.patch(f"/v1/events/{eid}", json={"override_pin": None})
    assert cleared.json()["override_pin_set"] is False
    again = device.client.get(f"/v1/sync/events/{eid}/pull", params={"cursor": head}).json()
    assert again["event"]["override_pin_hash"] is None and int(again["cursor"]) > int(head)
    created = c.post(
        "/v1/events", json={"name": "Other", "slug": "other", "override_pin": "123456789012"}
    )
    assert created.status_code == 201 and created.json()["override_pin_set"] is True


@pytest.mark.parametrize(
    "pin", ["12ab", "123", "1234567890123", 1234, ["1234"], {"pin": "1234"}, True, " 1234"]
)
def test_a_bad_pin_is_refused_with_the_envelope(api: Api, org: Org, pin: object) -> None:
    eid = setup_event(org)["id"]
    error = assert_error(
        org.client.patch(f"/v1/events/{eid}", json={"override_pin": pin}), 422, "validation_error"
    )
    assert any(d["field"].endswith("override_pin") for d in error["details"]), error
    assert _event(org, eid)["override_pin_set"] is False


def _override(device: Device, s: dict[str, Any], code: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "override": True,
        "override_reason": "staff_decision",
        "override_note": "Lost wristband, ID checked by Marta",
        "overridden_reason": "already_inside",
        **extra,
    }
    return device.reading(s["id"], s["gate_b"]["id"], code, **fields)


def test_a_pushed_override_is_stored_counted_announced_and_never_a_conflict(
    api: Api, org: Org, receiver: Receiver
) -> None:
    s = setup_event(org, zone_capacity=100)
    eid, c = s["id"], org.client
    hook = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["checkin.accepted"]})
    assert hook.status_code == 201, hook.text
    ana = add_attendee(org, eid)
    door = Device(api, org, "Door 1")
    first = door.push([door.reading(eid, s["gate_a"]["id"], ana["qr"])])
    assert first[0]["status"] == "applied"
    # Ana is inside: a plain admission at gate B would open an `already_inside` conflict ...
    bo = add_attendee(org, eid, first_name="Bo")
    plain = door.reading(eid, s["gate_b"]["id"], bo["qr"])  # first in the batch: no override
    results = door.push([plain, _override(door, s, ana["qr"])])[1:]
    assert results[0]["status"] == "applied" and results[0]["conflict_id"] is None
    assert results[0]["server_verdict"]["reason"] == "already_inside"  # what the rules say
    assert c.get(f"/v1/events/{eid}/conflicts", params={"status": "open"}).json()["data"] == []
    log = c.get(f"/v1/events/{eid}/scans", params={"attendee": ana["id"]}).json()["data"]
    (stored,) = [r for r in log if r["checkpoint_id"] == s["gate_b"]["id"]]
    assert stored["status"] == "accepted" and stored["override"] is True
    assert stored["override_reason"] == "staff_decision"
    assert stored["override_note"] == "Lost wristband, ID checked by Marta"
    assert stored["overridden_reason"] == "already_inside" and stored["operator"] == "Sam"
    stats = c.get(f"/v1/events/{eid}/stats").json()
    assert stats["overrides"] == 1
    gates = {g["id"]: g for g in stats["checkpoints"]}
    assert gates[s["gate_b"]["id"]]["overrides"] == 1 and gates[s["gate_b"]["id"]]["entries"] == 2
    assert gates[s["gate_a"]["id"]]["overrides"] == 0
    # ... and a late reading that re-decides the override does not open one either.
    late = door.reading(eid, s["gate_a"]["id"], ana["qr"], direction="out", at=None)
    assert door.push([late])[0]["conflict_id"] is None
    assert c.get(f"/v1/events/{eid}/conflicts", params={"status": "open"}).json()["data"] == []
    receiver.wait_for(3)
    secret = hook.json()["secret"]
    payloads = [Webhook(secret).verify(r["body"], r["headers"]) for r in receiver.requests]
    by_scan = {p["data"]["scan_id"]: p for p in payloads}
    announced = by_scan[stored["id"]]
    assert announced["type"] == "checkin.accepted"
    assert announced["data"]["override"] is True
    assert announced["data"]["override_reason"] == "staff_decision"
    assert announced["data"]["override_note"] == "Lost wristband, ID checked by Marta"
    assert announced["data"]["overridden_reason"] == "already_inside"
    plain = by_scan[first[0]["id"]]["data"]
    assert plain["override"] is False and plain["override_note"] is None


def test_a_hostile_or_incomplete_override_is_rejected_alone(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid = s["id"]
    ana = add_attendee(org, eid)
    door = Device(api, org, "Door 1")
    bad = [
        _override(door, s, ana["qr"], override_note="nul\x00byte"),
        _override(door, s, ana["qr"], override_note="x" * 10_240),
        _override(door, s, ana["qr"], override_reason="because"),
        _override(door, s, ana["qr"], override_note=None),
        _override(door, s, ana["qr"], override_reason=None),
        _override(door, s, ana["qr"], device_verdict={"status": "denied", "reason": "revoked"}),
        _override(door, s, ana["qr"], override=1),
    ]
    good = _override(door, s, ana["qr"])
    results = door.push([*bad, good])
    assert [r["status"] for r in results] == ["rejected"] * len(bad) + ["applied"]
    assert all(r["error"] for r in results[:-1])
    log = org.client.get(f"/v1/events/{eid}/scans").json()["data"]
    assert [r["id"] for r in log] == [good["id"]]
    assert json.dumps(log).count("x" * 1001) == 0
