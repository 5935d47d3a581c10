"""Attendees over real HTTP: CRUD, search and filters, custom codes, the QR (PNG that decodes back
to the same string), registrations from external forms, deletion."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import zxingcpp

from tests.server.conftest import Api, Org, add_attendee, assert_error, scan, setup_event


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def _fields(error: dict[str, Any]) -> set[str]:
    return {d["field"] for d in error["details"]}


def test_create_get_update(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    base = f"/v1/events/{eid}/attendees"
    person = add_attendee(
        org,
        eid,
        email="Ana.Ruiz@Example.COM",
        phone="+34 600 000 000",
        company="Acme",
        tags=["press", " crew "],
        custom_data={"seat": "A1"},
        valid_until="2099-07-02T06:00:00+02:00",
    )
    assert person["object"] == "attendee" and person["id"].startswith("att_")
    assert person["event_id"] == eid and person["ticket_type"] == "general"
    assert person["qr"].startswith("DC1") and person["code"] is None and person["source"] == "api"
    assert person["tags"] == ["press", "crew"] and person["custom_data"] == {"seat": "A1"}
    assert person["valid_until"] == "2099-07-02T04:00:00Z"
    assert (person["status"], person["entries"], person["inside"], person["last_scan_at"]) == (
        "valid",
        0,
        {},
        None,
    )
    assert {"state", "seq", "email_norm", "ticket_type_id"}.isdisjoint(person)
    assert c.get(f"{base}/{person['id']}").json() == person

    moved = c.patch(
        f"{base}/{person['id']}", json={"ticket_type": "vip", "tags": [], "phone": None}
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["ticket_type"], body["tags"], body["phone"]) == ("vip", [], None)
    assert body["qr"] != person["qr"]  # the signed ticket names its type
    assert body["updated_at"] >= person["updated_at"]
    assert scan(c, s["gate_a"]["id"], body["qr"])["attendee"]["ticket_type"] == "vip"
    # The old ticket still verifies (same key) but no longer tells the truth about the type; the
    # server trusts its own records: the scan above counted, and the old QR is the same person.
    assert scan(c, s["gate_b"]["id"], person["qr"])["verdict"]["reason"] == "already_inside"

    seen = c.get(f"{base}/{person['id']}").json()
    assert seen["entries"] == 1 and seen["inside"] == {s["zone"]["id"]: True}
    assert seen["last_scan_at"] is not None

    other = add_attendee(org, eid, email="other@example.com")
    for bad, status, field in [
        ({"email": "ana.ruiz@example.com"}, 409, "email"),
        ({"first_name": None}, 422, "first_name"),
        ({"first_name": "  "}, 422, "first_name"),
        ({"ticket_type": "nope"}, 422, "ticket_type"),
        ({"ticket_type": None}, 422, "ticket_type"),
        ({"status": "gone"}, 422, "status"),
        ({"status": None}, 422, "status"),
        ({"tags": None}, 422, "tags"),
        ({"email": "not-an-email"}, 422, "email"),
        ({"code": "DC1ABC"}, 422, "code"),
        ({"qr": "x"}, 422, "qr"),
        ({"entries": 5}, 422, "entries"),
    ]:
        error = assert_error(
            c.patch(f"{base}/{other['id']}", json=bad),
            status,
            "conflict" if status == 409 else "validation_error",
        )
        assert field in _fields(error), (bad, error)
    assert c.get(f"{base}/{other['id']}").json() == other


def test_create_validation(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    base = f"/v1/events/{s['id']}/attendees"
    ok = {"first_name": "Ana", "last_name": "Ruiz", "ticket_type": "general"}
    invalid: list[tuple[dict[str, Any], str]] = [
        ({"first_name": ""}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"first_name": "x" * 201}, "first_name"),
        ({"email": "nope"}, "email"),
        ({"ticket_type": "missing"}, "ticket_type"),
        ({"ticket_type": ""}, "ticket_type"),
        ({"tags": "vip"}, "tags"),
        ({"tags": ["x"] * 51}, "tags"),
        ({"tags": [""]}, "tags.0"),
        ({"custom_data": []}, "custom_data"),
        ({"custom_data": {"blob": "x" * 17_000}}, "body"),
        ({"code": "dc1-mine"}, "code"),
        ({"code": ""}, "code"),
        ({"code": "x" * 513}, "code"),
        ({"status": "vip"}, "status"),
        ({"valid_from": "2026-07-01"}, "valid_from"),
        ({"id": "att_mine"}, "id"),
        ({"source": "door"}, "source"),
        ({"first_name": "A\u0000na"}, "first_name"),
        ({"custom_data": {"k\u0000": "v"}}, "custom_data"),
    ]
    for bad, field in invalid:
        error = assert_error(c.post(base, json={**ok, **bad}), 422, "validation_error")
        assert field in _fields(error), (bad, error)
    lone = b'{"first_name": "\\ud83d", "last_name": "R", "ticket_type": "general"}'
    error = assert_error(
        c.post(base, content=lone, headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert _fields(error) == {"first_name"}
    missing = assert_error(c.post(base, json={}), 422, "validation_error")
    assert {"first_name", "last_name", "ticket_type"} <= _fields(missing)
    assert c.get(base).json()["data"] == []


def test_custom_code_and_hostile_text_are_data(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    base = f"/v1/events/{eid}/attendees"
    hostile = "' OR 1=1 --"
    person = add_attendee(
        org,
        eid,
        code=f"  {hostile} ",
        first_name="Robert'); DROP TABLE x;--",
        last_name="🎟️ Ñoño",
        custom_data={"note": "<script>alert(1)</script>"},
    )
    assert person["code"] == hostile and person["qr"] == hostile
    assert person["first_name"] == "Robert'); DROP TABLE x;--" and person["last_name"] == "🎟️ Ñoño"
    twin = {"first_name": "B", "last_name": "C", "ticket_type": "general", "code": hostile}
    dup = assert_error(c.post(base, json=twin), 409, "conflict")
    assert _fields(dup) == {"code"}
    verdict = scan(c, s["gate_a"]["id"], hostile)
    assert verdict["verdict"]["status"] == "accepted" and verdict["attendee"]["id"] == person["id"]
    # Codes are exact: another case is another code.
    assert scan(c, s["gate_b"]["id"], hostile.replace("OR", "or"))["verdict"]["reason"] == (
        "unknown_code"
    )
    # Changing the code changes the QR; dropping it goes back to a signed ticket.
    assert c.patch(f"{base}/{person['id']}", json={"code": "TICKET-7"}).json()["qr"] == "TICKET-7"
    signed = c.patch(f"{base}/{person['id']}", json={"code": None}).json()
    assert signed["code"] is None and signed["qr"].startswith("DC1")
    # The same custom code may exist in another event.
    other = c.post("/v1/events", json={"name": "B", "slug": "b"}).json()["id"]
    c.post(f"/v1/events/{other}/ticket-types", json={"name": "G", "slug": "general"})
    assert add_attendee(org, other, code="TICKET-7")["qr"] == "TICKET-7"


def _decode_png(png: bytes) -> list[str]:
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return [r.text for r in zxingcpp.read_barcodes(image)]


def test_qr_png_decodes_back(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    signed = add_attendee(org, eid)
    custom = add_attendee(org, eid, code="VIP-0042 ✓")
    for person in (signed, custom):
        response = c.get(f"/v1/events/{eid}/attendees/{person['id']}/qr.png")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "private, no-store"
        assert response.content.startswith(b"\x89PNG")
        assert _decode_png(response.content) == [person["qr"]]
    small = c.get(f"/v1/events/{eid}/attendees/{signed['id']}/qr.png", params={"scale": 2})
    big = c.get(f"/v1/events/{eid}/attendees/{signed['id']}/qr.png", params={"scale": 20})
    assert len(small.content) < len(big.content)
    assert _decode_png(big.content) == [signed["qr"]]
    for scale in (0, 41, "x"):
        assert_error(
            c.get(f"/v1/events/{eid}/attendees/{signed['id']}/qr.png", params={"scale": scale}),
            422,
            "validation_error",
        )
    assert_error(c.get(f"/v1/events/{eid}/attendees/att_missing/qr.png"), 404, "not_found")


def test_registrations(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    url = f"/v1/events/{s['id']}/registrations"
    form = {
        "first_name": "Lu",
        "last_name": "Chen",
        "email": "Lu.Chen@Example.com",
        "ticket_type": "vip",
        "tags": ["early"],
        "custom_data": {"diet": "vegan"},
    }
    created = c.post(url, json=form)
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["qr"].startswith("DC1") and person["source"] == "api"
    assert person["email"].lower() == "lu.chen@example.com"
    assert scan(c, s["gate_a"]["id"], person["qr"])["attendee"]["id"] == person["id"]

    for email in ("lu.chen@example.com", "LU.CHEN@EXAMPLE.COM", " Lu.Chen@example.com "):
        dup = assert_error(c.post(url, json={**form, "email": email}), 409, "conflict")
        assert _fields(dup) == {"email"}
    # An email that happens to contain "code" is still an email clash.
    c.post(url, json={**form, "email": "decoder@example.com"})
    dup = assert_error(c.post(url, json={**form, "email": "Decoder@example.com"}), 409, "conflict")
    assert _fields(dup) == {"email"}
    # Without an email there is nothing to clash on.
    for _ in range(2):
        assert c.post(url, json={**form, "email": None}).status_code == 201

    error = assert_error(
        c.post(url, json={"first_name": "", "email": "bad", "ticket_type": "vip", "tags": [1]}),
        422,
        "validation_error",
    )
    assert {"first_name", "last_name", "email", "tags.0"} <= _fields(error)
    assert all(d["message"] and d["code"] for d in error["details"])
    unknown = assert_error(
        c.post(url, json={**form, "email": "x@example.com", "ticket_type": "gold"}),
        422,
        "validation_error",
    )
    assert _fields(unknown) == {"ticket_type"}
    assert len(c.get(f"/v1/events/{s['id']}/attendees").json()["data"]) == 4


def test_list_search_and_filters(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    base = f"/v1/events/{eid}/attendees"
    ana = add_attendee(
        org, eid, first_name="Ana", last_name="Ruiz", email="ana@fest.example", tags=["vip-plus"]
    )
    bo = add_attendee(
        org,
        eid,
        first_name="Bo",
        last_name="Lindqvist",
        ticket_type="vip",
        email="bo@other.example",
        tags=["vip", "press"],
    )
    cy = add_attendee(
        org, eid, first_name="Cyd", last_name="100%_Sure", code="GATE-77", tags=["café ☕"]
    )
    cancelled = add_attendee(org, eid, first_name="Dee", last_name="Ruiz", status="cancelled")
    everyone = [cancelled["id"], cy["id"], bo["id"], ana["id"]]
    assert _ids(c.get(base)) == everyone

    def q(**params: Any) -> list[str]:
        return _ids(c.get(base, params=params))

    assert q(q="ruiz") == [cancelled["id"], ana["id"]]
    assert q(q="ANA RUIZ") == [ana["id"]]
    assert q(q="other.example") == [bo["id"]]
    assert q(q="gate-7") == [cy["id"]]
    assert q(q=bo["id"]) == [bo["id"]]
    assert q(q="100%_") == [cy["id"]]
    assert q(q="%") == [cy["id"]] and q(q="_") == [cy["id"]]
    assert q(q="' OR 1=1 --") == [] and q(q="🎟️") == []
    assert q(q="   ") == everyone
    assert q(status="cancelled") == [cancelled["id"]]
    assert q(status="valid", q="ruiz") == [ana["id"]]
    assert q(ticket_type="vip") == [bo["id"]]
    assert q(tag="vip") == [bo["id"]]  # exact tags: "vip-plus" is another tag
    assert q(tag="vip-plus") == [ana["id"]]
    assert q(tag="café ☕") == [cy["id"]]
    assert q(tag='"') == [] and q(tag="%") == []
    assert q(checked_in="false") == everyone
    scan(c, s["gate_a"]["id"], bo["qr"])
    assert q(checked_in="true") == [bo["id"]]
    assert q(checked_in="false", ticket_type="general") == [cancelled["id"], cy["id"], ana["id"]]
    # Having left again still counts as checked in.
    scan(c, s["gate_a"]["id"], bo["qr"], direction="out")
    assert q(checked_in="true") == [bo["id"]]

    assert_error(c.get(base, params={"ticket_type": "nope"}), 422, "validation_error")
    for params in (
        {"status": "lost"},
        {"checked_in": "perhaps"},
        {"q": "x" * 201},
        {"tag": "t" * 65},
    ):
        assert_error(c.get(base, params=params), 422, "validation_error")


def test_delete(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    base = f"/v1/events/{eid}/attendees"
    person = add_attendee(org, eid, email="gone@example.com", code="GONE-1")
    keep = add_attendee(org, eid)
    scan(c, s["gate_a"]["id"], person["qr"])
    assert c.delete(f"{base}/{person['id']}").status_code == 204
    assert_error(c.get(f"{base}/{person['id']}"), 404, "not_found")
    assert_error(c.delete(f"{base}/{person['id']}"), 404, "not_found")
    assert_error(c.patch(f"{base}/{person['id']}", json={"first_name": "X"}), 404, "not_found")
    assert _ids(c.get(base)) == [keep["id"]]
    # The reading stays in the log, detached; the code and email are free again.
    readings = c.get(f"/v1/events/{eid}/scans").json()["data"]
    assert len(readings) == 1 and readings[0]["attendee_id"] is None
    again = add_attendee(org, eid, email="gone@example.com", code="GONE-1")
    assert scan(c, s["gate_b"]["id"], "GONE-1")["attendee"]["id"] == again["id"]
    # A deleted person's signed QR still verifies but admits no one.
    signed = add_attendee(org, eid)
    assert c.delete(f"{base}/{signed['id']}").status_code == 204
    assert scan(c, s["gate_b"]["id"], signed["qr"])["verdict"]["reason"] == "unknown_code"
