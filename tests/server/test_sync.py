"""Device sync over real HTTP: enrolment, pulls by cursor, idempotent pushes, reconciliation and
conflicts, with two or more real device clients against one server (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from sync_server.db import session_scope
from sync_server.models import Device
from tests.server.conftest import Api, Org, add_attendee, assert_error, setup_event


class Gate:
    """A scanner device as the server sees it: a token, a clock, and what it pushes."""

    def __init__(
        self, api: Api, org: Org, name: str, *, clock_skew: timedelta = timedelta()
    ) -> None:
        enrolment = org.client.post("/v1/devices", json={"name": name})
        assert enrolment.status_code == 201, enrolment.text
        body = enrolment.json()
        assert body["pairing_uri"].startswith("doorcheck://pair?server=")
        enrolled = httpx.post(
            f"{api.url}/v1/devices/enroll",
            json={"code": body["enrollment_code"].lower(), "name": name},
        )
        assert enrolled.status_code == 200, enrolled.text
        self.id = enrolled.json()["device_id"]
        self.token = enrolled.json()["device_token"]
        assert self.token.startswith("dk_dev_")
        self.skew = clock_skew
        self.client = httpx.Client(
            base_url=api.url, timeout=60, headers={"Authorization": f"Bearer {self.token}"}
        )
        self.counter = 0

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew

    def reading(
        self,
        event_id: str,
        checkpoint_id: str,
        code: str,
        *,
        direction: str = "in",
        status: str = "accepted",
        reason: str = "ok",
        at: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        self.counter += 1
        when = at or self.now()
        return {
            "id": str(uuid.uuid4()),
            "event_id": event_id,
            "checkpoint_id": checkpoint_id,
            "code": code,
            "direction": direction,
            "scanned_at": when.isoformat(),
            "hlc": f"{int(when.timestamp() * 1000):015d}-{self.counter:05d}-{self.id}",
            "device_verdict": {"status": status, "reason": reason},
            "operator": "Sam",
            **extra,
        }

    def push(self, scans: list[Any] = (), registrations: list[Any] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
        response = self.client.post(
            "/v1/sync/push",
            json={
                "device_time": self.now().isoformat(),
                "scans": list(scans),
                "registrations": list(registrations),
            },
        )
        assert response.status_code == 200, response.text
        return list(response.json()["results"])

    def pull_all(
        self, event_id: str, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[Any], str, int]:
        rows: list[Any] = []
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            page = self.client.get(f"/v1/sync/events/{event_id}/pull", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            rows += body["attendees"]
            cursor, pages = body["cursor"], pages + 1
            if not body["has_more"]:
                return rows, cursor, pages


@pytest.fixture
def venue(api: Api, org: Org) -> dict[str, Any]:
    return setup_event(org, zone_capacity=100)


def occupancy(org: Org, venue: dict[str, Any]) -> int:
    zone = org.client.get(f"/v1/events/{venue['id']}/zones/{venue['zone']['id']}").json()
    return int(zone["occupancy"])


def test_enrolment_code_works_once_and_expires(api: Api, org: Org) -> None:
    body = org.client.post("/v1/devices", json={"name": "Gate 1"}).json()
    first = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": body["enrollment_code"]})
    assert first.status_code == 200
    again = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": body["enrollment_code"]})
    assert_error(again, 401, "invalid_enrollment_code")
    stale = org.client.post("/v1/devices", json={"name": "Gate 2"}).json()
    with session_scope(api.app.state.engine) as session:
        session.execute(
            update(Device)
            .where(Device.id == stale["id"])
            .values(enrollment_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": stale["enrollment_code"]})
    assert_error(late, 401, "invalid_enrollment_code")
    listed = {d["id"]: d for d in org.client.get("/v1/devices").json()["data"]}
    assert listed[body["id"]]["status"] == "active" and listed[stale["id"]]["status"] == "pending"
    assert "enrollment_code" not in listed[body["id"]]


def test_device_token_is_scan_only_and_revocable(api: Api, org: Org, venue: dict[str, Any]) -> None:
    gate = Gate(api, org, "Gate A")
    for method, path in (
        ("GET", "/v1/api-keys"),
        ("GET", f"/v1/events/{venue['id']}/attendees"),
        ("POST", "/v1/devices"),
        ("GET", f"/v1/events/{venue['id']}/conflicts"),
    ):
        assert_error(
            gate.client.request(method, path, json={"name": "x"}), 403, "insufficient_scope"
        )
    assert gate.client.get("/v1/sync/events").status_code == 200
    assert org.client.delete(f"/v1/devices/{gate.id}").status_code == 204
    assert_error(gate.client.get("/v1/sync/events"), 401, "invalid_api_key")


def test_full_pull_in_pages_then_exactly_the_changes(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    eid = venue["id"]
    rows = "first_name,last_name,email,ticket_type\n" + "".join(
        f"P{i},Pull,p{i}@example.com,general\n" for i in range(2500)
    )
    imported = org.client.post(
        f"/v1/events/{eid}/attendees/import", content=rows, headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 200 and imported.json()["created"] == 2500
    gate = Gate(api, org, "Gate A")
    everyone, cursor, pages = gate.pull_all(eid, limit=1000)
    assert len(everyone) == 2500 and pages == 3
    assert len({a["id"] for a in everyone}) == 2500
    first = everyone[0]
    assert first["qr"].startswith("DC1") and first["ticket_type"] == "general"

    changed, deleted, scanned = everyone[10], everyone[20], everyone[30]
    org.client.patch(f"/v1/events/{eid}/attendees/{changed['id']}", json={"status": "revoked"})
    assert org.client.delete(f"/v1/events/{eid}/attendees/{deleted['id']}").status_code == 204
    online = org.client.post(
        f"/v1/checkpoints/{venue['gate_a']['id']}/scans", json={"code": scanned["qr"]}
    )
    assert online.json()["verdict"]["status"] == "accepted"
    delta, cursor2, _ = gate.pull_all(eid, cursor)
    by_id = {row["id"]: row for row in delta}
    assert set(by_id) == {changed["id"], deleted["id"], scanned["id"]}
    assert by_id[changed["id"]]["status"] == "revoked"
    assert by_id[deleted["id"]] == {
        "id": deleted["id"],
        "deleted": True,
        "seq": by_id[deleted["id"]]["seq"],
    }
    assert by_id[scanned["id"]]["zones"][venue["zone"]["id"]]["inside"] is True
    nothing, cursor3, _ = gate.pull_all(eid, cursor2)
    assert nothing == [] and cursor3 == cursor2
    page = gate.client.get(f"/v1/sync/events/{eid}/pull").json()
    assert page["ticket_public_key"] == venue["event"]["ticket_public_key"]
    assert {c["id"] for c in page["checkpoints"]} == {venue["gate_a"]["id"], venue["gate_b"]["id"]}
    assert_error(
        gate.client.get(f"/v1/sync/events/{eid}/pull", params={"cursor": "999999999"}),
        410,
        "must_refetch",
    )
    for hostile in ("x'--", "²", "١٢٣"):  # digits to str.isdigit, not to int() or to us
        assert_error(
            gate.client.get(f"/v1/sync/events/{eid}/pull", params={"cursor": hostile}),
            410,
            "must_refetch",
        )


def test_pull_is_gzipped(api: Api, org: Org, venue: dict[str, Any]) -> None:
    for i in range(30):
        add_attendee(org, venue["id"], first_name=f"G{i}")
    gate = Gate(api, org, "Gate A")
    with httpx.stream(
        "GET",
        f"{api.url}/v1/sync/events/{venue['id']}/pull",
        headers={"Authorization": f"Bearer {gate.token}", "Accept-Encoding": "gzip"},
    ) as r:
        assert r.headers["content-encoding"] == "gzip"


def test_push_twice_is_duplicate_and_changes_nothing(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    person = add_attendee(org, venue["id"])
    gate = Gate(api, org, "Gate A")
    item = gate.reading(venue["id"], venue["gate_a"]["id"], person["qr"])
    first = gate.push([item])
    assert first[0]["status"] == "applied" and first[0]["server_verdict"]["reason"] == "ok"
    second = gate.push([item])
    assert second[0]["status"] == "duplicate"
    assert second[0]["server_verdict"] == first[0]["server_verdict"]
    log = org.client.get(f"/v1/events/{venue['id']}/scans").json()["data"]
    assert [s["id"] for s in log] == [item["id"]] and log[0]["offline"] is True
    assert occupancy(org, venue) == 1


def test_a_bad_item_is_rejected_alone(api: Api, org: Org, venue: dict[str, Any]) -> None:
    person = add_attendee(org, venue["id"])
    gate = Gate(api, org, "Gate A")
    good = gate.reading(venue["id"], venue["gate_a"]["id"], person["qr"])
    bad_time = {**gate.reading(venue["id"], venue["gate_a"]["id"], "x"), "scanned_at": "yesterday"}
    foreign = gate.reading("evt_doesnotexist", venue["gate_a"]["id"], person["qr"])
    hostile = gate.reading(
        venue["id"], venue["gate_a"]["id"], "\x00" * 2000, status="denied", reason="malformed_code"
    )
    results = gate.push([bad_time, good, "not an object", foreign, hostile])
    statuses = [r["status"] for r in results]
    assert statuses == ["rejected", "applied", "rejected", "rejected", "applied"]
    assert "scanned_at" in results[0]["error"]
    assert results[4]["server_verdict"]["reason"] == "malformed_code"


def test_two_gates_admit_the_same_ticket_offline(api: Api, org: Org, venue: dict[str, Any]) -> None:
    person = add_attendee(org, venue["id"])
    gate_a, gate_b = Gate(api, org, "Gate A"), Gate(api, org, "Gate B")
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    gate_a.push([gate_a.reading(venue["id"], venue["gate_a"]["id"], person["qr"], at=t0)])
    late = gate_b.reading(
        venue["id"], venue["gate_b"]["id"], person["qr"], at=t0 + timedelta(minutes=5)
    )
    result = gate_b.push([late])[0]
    assert result["status"] == "applied" and result["server_verdict"]["reason"] == "already_inside"
    assert result["conflict_id"] and occupancy(org, venue) == 2
    conflicts = org.client.get(
        f"/v1/events/{venue['id']}/conflicts", params={"status": "open"}
    ).json()
    assert [c["id"] for c in conflicts["data"]] == [result["conflict_id"]]
    detail = org.client.get(f"/v1/conflicts/{result['conflict_id']}").json()
    assert detail["kind"] == "already_inside" and len(detail["scans"]) == 2
    resolved = org.client.post(
        f"/v1/conflicts/{result['conflict_id']}/resolve",
        json={"resolution": "void_scan", "note": "same person, re-scan"},
    )
    assert resolved.status_code == 200 and resolved.json()["resolved_by"]
    assert occupancy(org, venue) == 1
    again = org.client.post(
        f"/v1/conflicts/{result['conflict_id']}/resolve", json={"resolution": "accept"}
    )
    assert_error(again, 409, "conflict")
    stats = org.client.get(f"/v1/events/{venue['id']}/stats").json()
    assert stats["zones"][0]["occupancy"] == 1


def test_two_gates_admit_offline_and_the_earlier_entry_arrives_last(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    """Gate B (the later entry) uploads first, Gate A (the earlier one) after: the double
    admission is still found, on the later reading."""
    person = add_attendee(org, venue["id"])
    gate_a, gate_b = Gate(api, org, "Gate A"), Gate(api, org, "Gate B")
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    early = gate_a.reading(venue["id"], venue["gate_a"]["id"], person["qr"], at=t0)
    late = gate_b.reading(
        venue["id"], venue["gate_b"]["id"], person["qr"], at=t0 + timedelta(minutes=5)
    )
    first = gate_b.push([late])[0]
    assert first["status"] == "applied" and first["conflict_id"] is None
    second = gate_a.push([early])[0]
    assert second["status"] == "applied" and second["server_verdict"]["status"] == "accepted"
    conflicts = org.client.get(
        f"/v1/events/{venue['id']}/conflicts", params={"status": "open"}
    ).json()["data"]
    assert len(conflicts) == 1, conflicts
    detail = org.client.get(f"/v1/conflicts/{conflicts[0]['id']}").json()
    assert detail["kind"] == "already_inside"
    assert sorted(s["id"] for s in detail["scans"]) == sorted([late["id"], early["id"]])
    resolved = org.client.post(
        f"/v1/conflicts/{detail['id']}/resolve", json={"resolution": "void_scan"}
    )
    assert resolved.status_code == 200, resolved.text
    assert occupancy(org, venue) == 1


def test_late_offline_scan_of_a_revoked_ticket(api: Api, org: Org, venue: dict[str, Any]) -> None:
    person = add_attendee(org, venue["id"])
    gate = Gate(api, org, "Gate A")
    scanned_offline = datetime.now(UTC) - timedelta(minutes=1)
    time.sleep(0.01)
    org.client.patch(
        f"/v1/events/{venue['id']}/attendees/{person['id']}", json={"status": "revoked"}
    )
    early = gate.reading(
        venue["id"], venue["gate_a"]["id"], person["qr"], at=scanned_offline - timedelta(hours=1)
    )
    result = gate.push([early])[0]
    assert result["conflict_id"] is None, "scanned before the revocation: no conflict"
    late = gate.reading(venue["id"], venue["gate_a"]["id"], person["qr"], direction="out")
    gate.push([late])
    after = gate.reading(venue["id"], venue["gate_a"]["id"], person["qr"])
    result = gate.push([after])[0]
    assert result["server_verdict"]["reason"] == "revoked" and result["conflict_id"]
    assert occupancy(org, venue) == 1, "the reading is a fact: the person is inside"


def test_door_registration_and_its_duplicate(api: Api, org: Org, venue: dict[str, Any]) -> None:
    existing = add_attendee(org, venue["id"], email="walk@example.com")
    gate = Gate(api, org, "Gate A")
    new_reg = {
        "id": str(uuid.uuid4()),
        "event_id": venue["id"],
        "first_name": "Walk",
        "last_name": "In",
        "email": "new@example.com",
        "ticket_type": "general",
        "tags": ["door"],
        "created_at": gate.now().isoformat(),
        "hlc": "x",
    }
    dup_reg = {**new_reg, "id": str(uuid.uuid4()), "email": "WALK@example.com"}
    results = gate.push(registrations=[new_reg, dup_reg])
    assert results[0]["status"] == "applied" and results[0]["conflict_id"] is None
    walk_in = org.client.get(
        f"/v1/events/{venue['id']}/attendees/{results[0]['attendee_id']}"
    ).json()
    assert walk_in["source"] == "door" and walk_in["tags"] == ["door"]
    assert results[1]["conflict_id"] and results[1]["attendee_id"] == existing["id"]
    # The admission the device recorded for the walk-in, by the attendee id it derived itself.
    admit = gate.reading(venue["id"], venue["gate_a"]["id"], results[0]["attendee_id"], manual=True)
    assert gate.push([admit])[0]["server_verdict"]["reason"] == "ok"
    assert gate.push(registrations=[new_reg])[0]["status"] == "duplicate"
    conflict = org.client.get(f"/v1/conflicts/{results[1]['conflict_id']}").json()
    assert conflict["kind"] == "duplicate_registration"
    merged = org.client.post(
        f"/v1/conflicts/{conflict['id']}/resolve", json={"resolution": "merge"}
    )
    assert merged.status_code == 200 and merged.json()["resolution"] == "merge"


@pytest.mark.parametrize("skew_minutes", [-10, 10])
def test_clock_offsets_still_order_readings(
    api: Api, org: Org, venue: dict[str, Any], skew_minutes: int
) -> None:
    """A device whose clock is 10 minutes off scans entry, exit, entry; pushed in reverse order,
    the server still sees the person inside once, with no conflict."""
    person = add_attendee(org, venue["id"])
    skewed = Gate(api, org, "Skewed", clock_skew=timedelta(minutes=skew_minutes))
    t = skewed.now() - timedelta(minutes=3)
    entry = skewed.reading(venue["id"], venue["gate_a"]["id"], person["qr"], at=t)
    exit_ = skewed.reading(
        venue["id"],
        venue["gate_a"]["id"],
        person["qr"],
        direction="out",
        at=t + timedelta(minutes=1),
    )
    again = skewed.reading(
        venue["id"], venue["gate_a"]["id"], person["qr"], at=t + timedelta(minutes=2)
    )
    results = skewed.push([again, exit_, entry])
    assert all(r["status"] == "applied" for r in results)
    assert occupancy(org, venue) == 1
    devices = {d["id"]: d for d in org.client.get("/v1/devices").json()["data"]}
    offset = devices[skewed.id]["clock_offset_ms"]
    assert abs(offset - skew_minutes * 60_000) < 5_000
    state = org.client.get(f"/v1/events/{venue['id']}/attendees/{person['id']}").json()
    assert state["entries"] == 2 and state["inside"][venue["zone"]["id"]] is True
    # Another device, correct clock, admitting the person one minute "ago" in real time: inside.
    other = Gate(api, org, "Honest")
    late = other.push([other.reading(venue["id"], venue["gate_b"]["id"], person["qr"])])[0]
    assert late["server_verdict"]["reason"] == "already_inside"


def test_long_poll_sees_another_gates_scan(api: Api, org: Org, venue: dict[str, Any]) -> None:
    person = add_attendee(org, venue["id"])
    watcher, scanner = Gate(api, org, "Watcher"), Gate(api, org, "Scanner")
    _, cursor, _ = watcher.pull_all(venue["id"])
    seen: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        page = watcher.client.get(
            f"/v1/sync/events/{venue['id']}/pull", params={"cursor": cursor, "wait": 10}
        ).json()
        seen.update(page=page, waited=time.monotonic() - started)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    scanner.push([scanner.reading(venue["id"], venue["gate_a"]["id"], person["qr"])])
    thread.join(15)
    assert [a["id"] for a in seen["page"]["attendees"]] == [person["id"]]
    assert seen["waited"] < 9, "the long-poll answered when the change landed, not at its timeout"


def test_the_same_item_twice_in_one_batch_is_applied_once(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    person = add_attendee(org, venue["id"])
    gate = Gate(api, org, "Gate A")
    item = gate.reading(venue["id"], venue["gate_a"]["id"], person["qr"])
    first, copy = gate.push([item, item])
    assert first["status"] == "applied" and copy["status"] == "duplicate"
    assert copy["server_verdict"] == first["server_verdict"]
    assert occupancy(org, venue) == 1


def test_a_late_earlier_entry_contests_a_later_reentry_whatever_the_rule(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    """Not only `already_inside`: an entry that arrives after a later one re-judges that later
    admission for every rule that depends on the history (here: no re-entry)."""
    person = add_attendee(org, venue["id"])
    org.client.patch(
        f"/v1/events/{venue['id']}/checkpoints/{venue['gate_b']['id']}",
        json={"allow_reentry": False, "anti_passback": False},
    )
    gate_a, gate_b = Gate(api, org, "Gate A"), Gate(api, org, "Gate B")
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    early = gate_a.reading(venue["id"], venue["gate_b"]["id"], person["qr"], at=t0)
    late = gate_b.reading(
        venue["id"], venue["gate_b"]["id"], person["qr"], at=t0 + timedelta(minutes=5)
    )
    assert gate_b.push([late])[0]["conflict_id"] is None
    assert gate_a.push([early])[0]["conflict_id"] is None  # it was first: nothing wrong with it
    conflicts = org.client.get(
        f"/v1/events/{venue['id']}/conflicts", params={"status": "open"}
    ).json()["data"]
    assert [(c["kind"], c["scan_ids"]) for c in conflicts] == [
        ("reentry_not_allowed", [late["id"], early["id"]])
    ]
    assert conflicts[0]["details"]["found_when"] == "an earlier reading arrived after it"


def test_a_conflict_that_a_late_exit_explains_is_resolved_by_the_server(
    api: Api, org: Org, venue: dict[str, Any]
) -> None:
    """In at A, out at C, in again at B: B uploads before C, so B's entry looks like a double
    admission until C's exit arrives; then the server resolves the conflict itself."""
    person = add_attendee(org, venue["id"])
    gate_a, gate_b, gate_c = (Gate(api, org, f"Gate {n}") for n in "ABC")
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    entry = gate_a.reading(venue["id"], venue["gate_a"]["id"], person["qr"], at=t0)
    exit_ = gate_c.reading(
        venue["id"], venue["gate_a"]["id"], person["qr"], direction="out",
        at=t0 + timedelta(minutes=5),
    )  # fmt: skip
    again = gate_b.reading(
        venue["id"], venue["gate_b"]["id"], person["qr"], at=t0 + timedelta(minutes=10)
    )
    gate_a.push([entry])
    flagged = gate_b.push([again])[0]
    assert flagged["server_verdict"]["reason"] == "already_inside" and flagged["conflict_id"]
    assert occupancy(org, venue) == 2
    gate_c.push([exit_])
    detail = org.client.get(f"/v1/conflicts/{flagged['conflict_id']}").json()
    assert detail["status"] == "resolved" and detail["resolution"] == "accept"
    assert detail["resolved_by"].startswith("doorcheck")
    open_now = org.client.get(
        f"/v1/events/{venue['id']}/conflicts", params={"status": "open"}
    ).json()["data"]
    assert open_now == []
    assert occupancy(org, venue) == 1  # in, out, in again: one person inside
    attendee = org.client.get(f"/v1/events/{venue['id']}/attendees/{person['id']}").json()
    assert attendee["entries"] == 2 and attendee["inside"][venue["zone"]["id"]] is True
