"""The same code gets the same answer online, pushed from a device, and at a gate offline:
tickets of another organization, of another event, custom codes, forged and malformed codes
(the online scan and push once answered different reasons for a foreign ticket)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scanner_app.gate import Gate
from tests.conftest import serve
from tests.server.conftest import Api, Org, add_attendee, api, org, scan, setup_event

__all__ = ["api", "org"]


def _push(api: Api, org: Org, event_id: str, checkpoint_id: str, code: str) -> dict[str, Any]:
    enrolment = org.client.post("/v1/devices", json={"name": "raw"}).json()
    token = httpx.post(
        f"{api.url}/v1/devices/enroll", json={"code": enrolment["enrollment_code"], "name": "r"}
    ).json()["device_token"]
    now = datetime.now(UTC)
    item = {
        "id": str(uuid.uuid4()),
        "event_id": event_id,
        "checkpoint_id": checkpoint_id,
        "code": code,
        "scanned_at": now.isoformat(),
        "hlc": f"{int(now.timestamp() * 1000):015d}-00001-raw",
        "device_verdict": {"status": "denied", "reason": "unknown_code"},
    }
    answer = httpx.post(
        f"{api.url}/v1/sync/push",
        headers={"Authorization": f"Bearer {token}"},
        json={"device_time": now.isoformat(), "scans": [item]},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["results"][0])


def test_every_path_gives_the_same_reason(api: Api, org: Org, tmp_path: Path) -> None:
    here = setup_event(org)
    elsewhere = org.client.post(
        "/v1/events", json={"name": "Other day", "slug": "other-day"}
    ).json()
    org.client.post(
        f"/v1/events/{elsewhere['id']}/ticket-types", json={"name": "General", "slug": "general"}
    )
    other_org = api.new_org("Someone else")
    foreign = setup_event(other_org)
    mine = add_attendee(org, here["id"])
    same_org_other_event = add_attendee(org, elsewhere["id"], first_name="Lu")
    foreign_signed = add_attendee(other_org, foreign["id"], first_name="Xi")
    foreign_custom = add_attendee(other_org, foreign["id"], first_name="Yo", code="SHARED-77")
    forged = mine["qr"][:-6] + ("AAAAAA" if not mine["qr"].endswith("AAAAAA") else "BBBBBB")
    cases = {
        "another organization's signed ticket": (foreign_signed["qr"], "invalid_signature"),
        "another organization's custom code": (foreign_custom["code"], "unknown_code"),
        "a ticket of another event": (same_org_other_event["qr"], "wrong_event"),
        "a forged ticket": (forged, "invalid_signature"),
        "a malformed code": ("DC1" + "!" * 20, "malformed_code"),
        "an unknown code": ("NOBODY-1", "unknown_code"),
    }
    enrolment = org.client.post("/v1/devices", json={"name": "Gate"}).json()
    gate = Gate(tmp_path / "gate")
    try:
        gate.pair(api.url, enrolment["enrollment_code"], "Gate")
        gate.configure(here["id"], here["gate_b"]["id"], "in", "Op")
        assert gate.sync_now()
        api.live.stop()  # the gate decides from its cache alone
        for label, (code, reason) in cases.items():
            offline = gate.submit(code)
            assert (offline.status, offline.reason) == ("denied", reason), label
    finally:
        gate.close()
    api.live = serve(api.app, int(api.url.rsplit(":", 1)[1]))
    for label, (code, reason) in cases.items():
        online = scan(org.client, here["gate_b"]["id"], code)
        assert online["verdict"]["reason"] == reason, label
        pushed = _push(api, org, here["id"], here["gate_b"]["id"], code)
        assert pushed["server_verdict"]["reason"] == reason, (label, pushed)
