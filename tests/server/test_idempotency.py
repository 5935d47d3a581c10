"""`Idempotency-Key` (SPEC section 13): the same key and request replay the first answer, another
request under the key is refused, keys belong to one organization, bad keys are refused clearly,
and the records live in the database (two app instances on one database agree)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import Api, Org, assert_error, live_api, setup_event


def _register(org: Org, eid: str, key: str | None, **body: Any) -> httpx.Response:
    payload = {"first_name": "Ana", "last_name": "Ruiz", "ticket_type": "general", **body}
    headers = {"Idempotency-Key": key} if key is not None else {}
    return org.client.post(f"/v1/events/{eid}/registrations", json=payload, headers=headers)


def _count(org: Org, eid: str) -> int:
    return len(org.client.get(f"/v1/events/{eid}/attendees?limit=100").json()["data"])


def test_a_retried_registration_registers_once(org: Org) -> None:
    eid = setup_event(org)["id"]
    key = str(uuid.uuid4())
    first = _register(org, eid, key, email="ana@example.com")
    again = _register(org, eid, key, email="ana@example.com")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(org, eid) == 1
    # without a key, the same body is a second request: 409 duplicate email
    assert_error(_register(org, eid, None, email="ana@example.com"), 409, "conflict")


def test_a_key_used_for_another_body_is_refused(org: Org) -> None:
    eid = setup_event(org)["id"]
    assert _register(org, eid, "form-17", email="a@example.com").status_code == 201
    reused = _register(org, eid, "form-17", email="b@example.com")
    assert_error(reused, 422, "idempotency_key_reused")
    # another route under the same key is another request too
    other = org.client.post(
        "/v1/events", json={"name": "X", "slug": "x"}, headers={"Idempotency-Key": "form-17"}
    )
    assert_error(other, 422, "idempotency_key_reused")
    assert _count(org, eid) == 1


def test_the_first_answer_is_replayed_even_an_error(org: Org) -> None:
    eid = setup_event(org)["id"]
    bad = _register(org, eid, "k-err", ticket_type="nope")
    assert bad.status_code == 422
    again = _register(org, eid, "k-err", ticket_type="nope")
    assert again.status_code == 422 and again.json() == bad.json()
    assert again.headers["idempotent-replayed"] == "true"


def test_keys_belong_to_one_organization(api: Api, org: Org) -> None:
    other = api.new_org("Other")
    eid = setup_event(org)["id"]
    oid = setup_event(other)["id"]
    assert _register(org, eid, "shared-key").status_code == 201
    assert _register(other, oid, "shared-key").status_code == 201  # not a replay, not reused
    assert _count(other, oid) == 1


def test_online_scan_with_a_key_is_recorded_once(org: Org) -> None:
    setup = setup_event(org)
    qr = _register(org, setup["id"], None, email="s@example.com").json()["qr"]
    url = f"/v1/checkpoints/{setup['gate_a']['id']}/scans"
    headers = {"Idempotency-Key": "scan-1"}
    first = org.client.post(url, json={"code": qr, "direction": "in"}, headers=headers)
    again = org.client.post(url, json={"code": qr, "direction": "in"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["verdict"]["status"] == "accepted"
    assert again.headers["idempotent-replayed"] == "true"
    scans = org.client.get(f"/v1/events/{setup['id']}/scans").json()["data"]
    assert len(scans) == 1
    # the scan route keeps the key in its own thread: reuse, errors and strangers as elsewhere
    other = org.client.post(url, json={"code": qr, "direction": "out"}, headers=headers)
    assert_error(other, 422, "idempotency_key_reused")
    bad = {"Idempotency-Key": "scan-bad"}
    invalid = org.client.post(url, json={"code": qr, "direction": "up"}, headers=bad)
    assert_error(invalid, 422, "validation_error")
    replayed = org.client.post(url, json={"code": qr, "direction": "up"}, headers=bad)
    assert replayed.json() == invalid.json() and replayed.headers["idempotent-replayed"] == "true"
    nowhere = org.client.post(
        "/v1/checkpoints/chk_nope/scans", json={"code": qr}, headers={"Idempotency-Key": "s-404"}
    )
    assert_error(nowhere, 404, "not_found")
    stranger = httpx.post(
        f"{org.client.base_url}{url}",
        json={"code": qr},
        headers={"Idempotency-Key": "scan-1", "Authorization": "Bearer dk_live_" + "x" * 43},
    )
    assert_error(stranger, 401, "invalid_api_key")
    assert len(org.client.get(f"/v1/events/{setup['id']}/scans").json()["data"]) == 1


def test_bad_keys_are_refused_and_change_nothing(org: Org) -> None:
    eid = setup_event(org)["id"]
    for bad in ("", "x" * 256, "caf\u00e9", "a b", "tab\there"):
        response = org.client.post(
            f"/v1/events/{eid}/registrations",
            json={"first_name": "A", "last_name": "B", "ticket_type": "general"},
            headers={"Idempotency-Key": bad.encode("utf-8")},
        )
        error = assert_error(response, 422, "validation_error")
        assert error["details"][0]["field"] == "Idempotency-Key"
    twice = httpx.Client(base_url=str(org.client.base_url), headers=org.client.headers)
    response = twice.post(
        f"/v1/events/{eid}/registrations",
        json={"first_name": "A", "last_name": "B", "ticket_type": "general"},
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert_error(response, 422, "validation_error")
    assert _count(org, eid) == 0
    # an unknown key's caller is told 401, not that the key exists
    stranger = httpx.post(
        f"{org.client.base_url}/v1/events/{eid}/registrations",
        json={},
        headers={"Idempotency-Key": "k", "Authorization": "Bearer dk_live_" + "x" * 43},
    )
    assert_error(stranger, 401, "invalid_api_key")


def test_concurrent_retries_create_one_attendee(org: Org) -> None:
    eid = setup_event(org)["id"]
    answers: list[int] = []

    def send() -> None:
        answers.append(_register(org, eid, "race", email="race@example.com").status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) <= {201, 409} and 201 in answers
    assert _count(org, eid) == 1


def test_two_servers_on_one_database_share_the_keys(db_url: str, tmp_path: Path) -> None:
    with live_api(db_url, tmp_path / "a") as one, live_api(db_url, tmp_path / "b") as two:
        org = one.new_org()
        eid = setup_event(org)["id"]
        assert _register(org, eid, "both").status_code == 201
        with httpx.Client(base_url=two.url, headers=org.client.headers) as client:
            again = client.post(
                f"/v1/events/{eid}/registrations",
                json={"first_name": "Ana", "last_name": "Ruiz", "ticket_type": "general"},
                headers={"Idempotency-Key": "both"},
            )
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert _count(org, eid) == 1
