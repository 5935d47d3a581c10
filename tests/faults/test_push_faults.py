"""Push items that are out of range, that the database would refuse, or that come from a clock
far off: each is answered alone (applied, or rejected with a reason), never a 500 for the batch
(SPEC section 10; issue 17 findings 1-3, 8 and 10)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.server.conftest import Api, Org, add_attendee, setup_event


class Device:
    def __init__(self, api: Api, org: Org) -> None:
        code = org.client.post("/v1/devices", json={"name": "Faulty"}).json()["enrollment_code"]
        token = httpx.post(
            f"{api.url}/v1/devices/enroll", json={"code": code, "name": "Faulty"}
        ).json()["device_token"]
        self.client = httpx.Client(
            base_url=api.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        )

    def push(self, device_time: str, scans: list[Any] = (), regs: list[Any] = ()) -> Any:  # type: ignore[assignment]
        body = {"device_time": device_time, "scans": list(scans), "registrations": list(regs)}
        return self.client.post("/v1/sync/push", json=body)


def reading(venue: dict[str, Any], code: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_id": venue["id"],
        "checkpoint_id": venue["gate_a"]["id"],
        "code": code,
        "direction": "in",
        "scanned_at": at.isoformat(),
        "hlc": f"{int(at.timestamp() * 1000):015d}-00001-dev",
        "device_verdict": {"status": "accepted", "reason": "ok"},
        **extra,
    }


@pytest.fixture
def venue(api: Api, org: Org) -> dict[str, Any]:
    return setup_event(org, zone_capacity=None)


def test_a_device_that_believes_it_is_1970_still_uploads(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    person = add_attendee(org, venue["id"])
    device = Device(api, org)
    skew = datetime(1970, 1, 2, tzinfo=UTC) - datetime.now(UTC)  # ~ -56 years
    device_now = datetime.now(UTC) + skew
    first = reading(venue, person["qr"], device_now - timedelta(minutes=5))
    out = reading(venue, person["qr"], device_now - timedelta(minutes=1), direction="out")
    answer = device.push(device_now.isoformat(), [out, first])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    # corrected by the measured offset, the entry comes before the exit
    assert results[1]["server_verdict"]["reason"] == "ok"
    scans = org.client.get(f"/v1/events/{venue['id']}/scans").json()["data"]
    assert len(scans) == 2
    devices = org.client.get("/v1/devices").json()["data"]
    offset = next(d["clock_offset_ms"] for d in devices if d["name"] == "Faulty")
    assert offset < -1_700_000_000_000  # ~56 years, recorded whole


@pytest.mark.parametrize("field", ["operator", "hlc", "event_id", "checkpoint_id", "code"])
def test_a_nul_in_one_reading_rejects_that_reading_alone(
    api: Api, org: Org, venue: dict[str, Any], field: str
) -> None:
    person = add_attendee(org, venue["id"])
    other = add_attendee(org, venue["id"], first_name="Bo", email="bo@example.com")
    device = Device(api, org)
    now = datetime.now(UTC)
    bad = reading(venue, person["qr"], now)
    bad[field] = f"{bad.get(field) or 'x'}\x00tail"
    good = reading(venue, other["qr"], now)
    answer = device.push(now.isoformat(), [bad, good])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    if field == "code":  # the code is what the door read: malformed, recorded as denied
        assert results[0]["status"] == "applied"
        assert results[0]["server_verdict"]["reason"] == "malformed_code"
    else:
        assert results[0]["status"] == "rejected" and results[0]["error"], results[0]
    assert results[1]["status"] == "applied"


@pytest.mark.parametrize("field", ["first_name", "last_name", "email", "hlc"])
def test_a_nul_in_one_registration_rejects_it_alone(
    api: Api, org: Org, venue: dict[str, Any], field: str
) -> None:
    device = Device(api, org)
    now = datetime.now(UTC)

    def registration(n: int) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "event_id": venue["id"],
            "first_name": f"Walk{n}",
            "last_name": "In",
            "email": f"walk{n}@example.com",
            "ticket_type": "general",
            "created_at": now.isoformat(),
            "hlc": f"{int(now.timestamp() * 1000):015d}-0000{n}-dev",
        }

    bad, good = registration(1), registration(2)
    bad[field] = bad[field][:3] + "\x00" + bad[field][3:]
    answer = device.push(now.isoformat(), regs=[bad, good])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert results[0]["status"] == "rejected" and results[0]["error"]
    assert results[1]["status"] == "applied"


def test_a_reading_at_the_end_of_time_from_a_slow_clock_is_rejected_alone(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    person = add_attendee(org, venue["id"])
    other = add_attendee(org, venue["id"], first_name="Bo", email="bo@example.com")
    device = Device(api, org)
    now = datetime.now(UTC)
    behind = (now - timedelta(seconds=10)).isoformat()  # the device is 10 s behind
    end = reading(venue, person["qr"], datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    good = reading(venue, other["qr"], now - timedelta(seconds=12))
    answer = device.push(behind, [end, good])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert results[0]["status"] == "rejected" and "scanned_at" in results[0]["error"]
    assert results[1]["status"] == "applied"


def test_push_item_ids_are_uuids(api: Api, org: Org, venue: dict[str, Any]) -> None:
    person = add_attendee(org, venue["id"])
    device = Device(api, org)
    now = datetime.now(UTC)
    bad = reading(venue, person["qr"], now, id="not-a-uuid-but-long-enough")
    answer = device.push(now.isoformat(), [bad])
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert result["status"] == "rejected" and "id" in result["error"]


def test_another_organizations_attendee_id_is_unknown(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    """A manual check-in naming another organization's attendee reads as a code nobody has."""
    other = api.new_org("Elsewhere")
    theirs = add_attendee(other, setup_event(other)["id"])
    device = Device(api, org)
    now = datetime.now(UTC)
    item = reading(venue, theirs["id"], now, manual=True)
    nobody = reading(venue, "att_" + "a" * 26, now, manual=True)
    answer = device.push(now.isoformat(), [item, nobody])
    assert answer.status_code == 200, answer.text
    reasons = [r["server_verdict"]["reason"] for r in answer.json()["results"]]
    assert reasons == ["unknown_code", "unknown_code"]
