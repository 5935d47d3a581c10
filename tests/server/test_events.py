"""Events and their ticket types, zones and checkpoints over real HTTP: CRUD and validation."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import Api, Org, add_attendee, assert_error, scan, setup_event


def _fields(error: dict[str, Any]) -> set[str]:
    return {d["field"] for d in error["details"]}


def test_event_crud(api: Api, org: Org) -> None:
    c = org.client
    created = c.post(
        "/v1/events",
        json={
            "name": "  Summer Fest ",
            "slug": "summer-2026",
            "starts_at": "2026-07-01T16:00:00Z",
            "ends_at": "2026-07-02T02:00:00+02:00",
            "timezone": "Europe/Madrid",
            "capacity": 5000,
        },
    )
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["object"] == "event" and event["id"].startswith("evt_")
    assert event["name"] == "Summer Fest" and event["status"] == "published"
    assert event["ends_at"] == "2026-07-02T00:00:00Z"
    assert len(event["ticket_public_key"]) == 43
    assert "ticket_private_key_enc" not in event and "key_digest" not in event
    eid = event["id"]
    assert c.get(f"/v1/events/{eid}").json() == event

    draft = c.post("/v1/events", json={"name": "Later", "slug": "later", "status": "draft"}).json()
    listed = c.get("/v1/events").json()
    assert listed["object"] == "list" and [e["id"] for e in listed["data"]] == [draft["id"], eid]
    assert [e["id"] for e in c.get("/v1/events", params={"status": "draft"}).json()["data"]] == [
        draft["id"]
    ]

    patched = c.patch(
        f"/v1/events/{eid}",
        json={"name": "Summer Fest 2026", "capacity": None, "status": "archived"},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["capacity"], body["status"]) == (
        "Summer Fest 2026",
        None,
        "archived",
    )
    assert body["ticket_public_key"] == event["ticket_public_key"]
    assert body["updated_at"] >= event["updated_at"]

    assert c.delete(f"/v1/events/{draft['id']}").status_code == 204
    assert_error(c.get(f"/v1/events/{draft['id']}"), 404, "not_found")
    assert_error(c.delete(f"/v1/events/{draft['id']}"), 404, "not_found")


def test_event_validation(api: Api, org: Org) -> None:
    c = org.client
    ok = {"name": "Fest", "slug": "fest"}
    assert c.post("/v1/events", json=ok).status_code == 201
    dup = assert_error(c.post("/v1/events", json={**ok, "name": "Other"}), 409, "conflict")
    assert _fields(dup) == {"slug"}
    invalid: list[tuple[dict[str, Any], str]] = [
        ({"slug": "Bad Slug!"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"capacity": -1}, "capacity"),
        ({"status": "open"}, "status"),
        ({"starts_at": "2026-07-01T16:00:00"}, "starts_at"),  # naive: ambiguous
        ({"starts_at": "yesterday"}, "starts_at"),
        ({"ticket_public_key": "x"}, "ticket_public_key"),  # read-only
    ]
    for bad, field in invalid:
        error = assert_error(
            c.post("/v1/events", json={**ok, "slug": "new", **bad}), 422, "validation_error"
        )
        assert field in _fields(error), (bad, error)
    window = {"starts_at": "2026-07-02T00:00:00Z", "ends_at": "2026-07-01T00:00:00Z"}
    assert_error(c.post("/v1/events", json={**ok, "slug": "w", **window}), 422, "validation_error")
    assert_error(c.post("/v1/events", json={"slug": "no-name"}), 422, "validation_error")

    eid = c.post(
        "/v1/events", json={"name": "Two", "slug": "two", "starts_at": "2026-07-01T00:00:00Z"}
    ).json()["id"]
    assert _fields(
        assert_error(c.patch(f"/v1/events/{eid}", json={"slug": "fest"}), 409, "conflict")
    ) == {"slug"}
    bad_patches: list[dict[str, Any]] = [
        {"name": None},
        {"slug": None},
        {"status": None},
        {"timezone": "Nowhere/City"},
        {"ends_at": "2026-06-01T00:00:00Z"},
        {"id": "evt_x"},
        {"capacity": "many"},
    ]
    for bad in bad_patches:
        assert_error(c.patch(f"/v1/events/{eid}", json=bad), 422, "validation_error")
    assert c.get(f"/v1/events/{eid}").json()["slug"] == "two"

    # The ends of time: kept when they have a UTC instant, refused when they do not.
    edges = c.post(
        "/v1/events",
        json={
            "name": "Edges",
            "slug": "edges",
            "starts_at": "0001-01-01T00:00:00Z",
            "ends_at": "9999-12-31T23:59:59.999999Z",
        },
    )
    assert edges.status_code == 201, edges.text
    assert edges.json()["ends_at"] == "9999-12-31T23:59:59.999999Z"
    assert c.get(f"/v1/events/{edges.json()['id']}").json() == edges.json()
    tt = c.post(
        f"/v1/events/{eid}/ticket-types",
        json={
            "name": "Forever",
            "slug": "forever",
            "valid_from": "0001-01-01T00:00:00Z",
            "valid_until": "9999-12-31T23:59:59Z",
        },
    )
    assert tt.status_code == 201, tt.text
    person = c.post(
        f"/v1/events/{eid}/attendees",
        json={
            "first_name": "A",
            "last_name": "B",
            "ticket_type": "forever",
            "valid_until": "9999-12-31T00:00:00Z",
        },
    )
    assert person.status_code == 201 and person.json()["qr"].startswith("DC1"), person.text
    bad_patches = [
        {"starts_at": "0001-01-01T00:00:00+14:00"},
        {"ends_at": "9999-12-31T23:59:59-14:00"},
    ]
    for bad in bad_patches:
        assert_error(c.patch(f"/v1/events/{eid}", json=bad), 422, "validation_error")


def test_ticket_types(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, base = s["id"], f"/v1/events/{s['id']}/ticket-types"
    general, vip = s["general"], s["vip"]
    assert general["id"].startswith("tt_") and general["object"] == "ticket_type"
    assert (general["number"], vip["number"], vip["is_vip"]) == (1, 2, True)
    assert [t["slug"] for t in c.get(base).json()["data"]] == ["vip", "general"]
    assert c.get(f"{base}/{vip['id']}").json() == vip

    assert _fields(
        assert_error(c.post(base, json={"name": "Again", "slug": "vip"}), 409, "conflict")
    ) == {"slug"}
    window = {"valid_from": "2026-07-02T00:00:00Z", "valid_until": "2026-07-01T00:00:00Z"}
    bad_bodies: list[dict[str, Any]] = [
        {"name": "X", "slug": "BAD"},
        {"name": "", "slug": "x"},
        {"name": "X", "slug": "x", **window},
        {"name": "X", "slug": "x", "number": 9},
        {"name": "X", "slug": "x", "valid_from": "2026-07-01T00:00:00"},
    ]
    for bad in bad_bodies:
        assert_error(c.post(base, json=bad), 422, "validation_error")

    day = c.post(
        base,
        json={
            "name": "Day",
            "slug": "day",
            "valid_from": "2026-07-01T08:00:00Z",
            "valid_until": "2026-07-01T23:00:00+02:00",
        },
    ).json()
    assert day["number"] == 3 and day["valid_until"] == "2026-07-01T21:00:00Z"
    patched = c.patch(f"{base}/{day['id']}", json={"name": "Day pass", "is_vip": True})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["is_vip"], patched.json()["slug"]) == (
        "Day pass",
        True,
        "day",
    )
    assert _fields(
        assert_error(c.patch(f"{base}/{day['id']}", json={"slug": "vip"}), 409, "conflict")
    ) == {"slug"}
    bad_patches: list[dict[str, Any]] = [
        {"name": None},
        {"slug": None},
        {"is_vip": None},
        {"valid_until": "2026-06-01T00:00:00Z"},
        {"number": 7},
    ]
    for bad in bad_patches:
        assert_error(c.patch(f"{base}/{day['id']}", json=bad), 422, "validation_error")
    assert c.get(f"{base}/{day['id']}").json()["slug"] == "day"

    add_attendee(org, eid, ticket_type="general")
    assert_error(c.delete(f"{base}/{general['id']}"), 409, "conflict")
    assert c.delete(f"{base}/{day['id']}").status_code == 204
    assert_error(c.get(f"{base}/{day['id']}"), 404, "not_found")
    # Numbers are never reused: a signed ticket names its type by number.
    assert c.post(base, json={"name": "Late", "slug": "late"}).json()["number"] == 4


def test_zones(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org, zone_capacity=100)
    base = f"/v1/events/{s['id']}/zones"
    zone = s["zone"]
    assert zone["id"].startswith("zone_") and (zone["capacity"], zone["occupancy"]) == (100, 0)
    open_air = c.post(base, json={"name": "Open air"}).json()
    assert open_air["capacity"] is None
    assert [z["id"] for z in c.get(base).json()["data"]] == [open_air["id"], zone["id"]]
    bad_bodies: list[dict[str, Any]] = [
        {"name": "X", "capacity": -1},
        {"name": "X", "occupancy": 5},
        {"capacity": 3},
        {"name": "X", "capacity": 1.5},
    ]
    for bad in bad_bodies:
        assert_error(c.post(base, json=bad), 422, "validation_error")
    patched = c.patch(f"{base}/{zone['id']}", json={"capacity": 1, "name": "Hall"}).json()
    assert (patched["name"], patched["capacity"]) == ("Hall", 1)
    assert c.patch(f"{base}/{zone['id']}", json={"capacity": None}).json()["capacity"] is None
    bad_patches: list[dict[str, Any]] = [{"name": None}, {"occupancy": 0}, {"capacity": -5}]
    for bad in bad_patches:
        assert_error(c.patch(f"{base}/{zone['id']}", json=bad), 422, "validation_error")

    # Deleting a zone detaches its checkpoints.
    assert c.delete(f"{base}/{zone['id']}").status_code == 204
    gate = c.get(f"/v1/events/{s['id']}/checkpoints/{s['gate_a']['id']}").json()
    assert gate["zone_id"] is None
    assert_error(c.get(f"{base}/{zone['id']}"), 404, "not_found")


def test_checkpoints(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, base = s["id"], f"/v1/events/{s['id']}/checkpoints"
    gate = c.post(base, json={"name": "Backstage", "zone_id": s["zone"]["id"]}).json()
    assert gate["id"].startswith("cp_") and gate["object"] == "checkpoint"
    assert (gate["direction"], gate["active"], gate["allow_reentry"], gate["anti_passback"]) == (
        "in",
        True,
        True,
        True,
    )
    assert (gate["allowed_ticket_types"], gate["required_tags"], gate["max_entries"]) == (
        [],
        [],
        None,
    )
    full = c.post(
        base,
        json={
            "name": "VIP door",
            "zone_id": s["zone"]["id"],
            "direction": "both",
            "allowed_ticket_types": ["vip"],
            "required_tags": [" press "],
            "excluded_tags": ["banned"],
            "max_entries": 3,
            "allow_reentry": False,
            "anti_passback": False,
            "open_from": "2026-07-01T16:00:00Z",
            "open_until": "2026-07-02T04:00:00Z",
        },
    )
    assert full.status_code == 201, full.text
    body = full.json()
    assert body["required_tags"] == ["press"] and body["allowed_ticket_types"] == ["vip"]
    assert c.get(f"{base}/{body['id']}").json() == body
    assert len(c.get(base).json()["data"]) == 4

    other_event = c.post("/v1/events", json={"name": "Other", "slug": "other"}).json()["id"]
    other_zone = c.post(f"/v1/events/{other_event}/zones", json={"name": "Z"}).json()["id"]
    window = {"open_from": "2026-07-02T00:00:00Z", "open_until": "2026-07-01T00:00:00Z"}
    invalid: list[tuple[dict[str, Any], str]] = [
        ({"direction": "sideways"}, "direction"),
        ({"allowed_ticket_types": ["nope"]}, "allowed_ticket_types"),
        ({"zone_id": other_zone}, "zone_id"),  # a zone of another event
        ({"zone_id": "zone_missing"}, "zone_id"),
        ({"max_entries": -1}, "max_entries"),
        ({"required_tags": [""]}, "required_tags.0"),
        ({"active": "maybe"}, "active"),
        (window, "body"),
    ]
    for bad, field in invalid:
        error = assert_error(c.post(base, json={"name": "X", **bad}), 422, "validation_error")
        assert field in _fields(error), (bad, error)

    url = f"{base}/{gate['id']}"
    patched = c.patch(url, json={"direction": "out", "active": False, "required_tags": ["crew"]})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["direction"], patched.json()["active"]) == ("out", False)
    assert c.patch(url, json={"zone_id": None}).json()["zone_id"] is None
    assert c.patch(url, json={"zone_id": s["zone"]["id"]}).json()["zone_id"] == s["zone"]["id"]
    bad_patches: list[dict[str, Any]] = [
        {"name": None},
        {"direction": None},
        {"active": None},
        {"anti_passback": None},
        {"allowed_ticket_types": None},
        {"required_tags": None},
        {"excluded_tags": None},
        {"allowed_ticket_types": ["nope"]},
        {"zone_id": other_zone},
        {"open_from": "soon"},
    ]
    for bad in bad_patches:
        assert_error(c.patch(url, json=bad), 422, "validation_error")
    # The whole window is checked, not only the half a PATCH sends.
    assert_error(
        c.patch(f"{base}/{body['id']}", json={"open_until": "2026-06-30T00:00:00Z"}),
        422,
        "validation_error",
    )
    after = c.get(url).json()
    assert after["name"] == "Backstage" and after["required_tags"] == ["crew"]

    # A gate with readings can go; its readings go with it, the attendee's state stays.
    person = add_attendee(org, eid)
    assert scan(c, s["gate_a"]["id"], person["qr"])["verdict"]["status"] == "accepted"
    assert c.delete(f"{base}/{s['gate_a']['id']}").status_code == 204
    assert_error(c.get(f"{base}/{s['gate_a']['id']}"), 404, "not_found")
    assert c.get(f"/v1/events/{eid}/attendees/{person['id']}").json()["entries"] == 1


def test_delete_event_with_everything_in_it(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org, zone_capacity=5)
    eid = s["id"]
    person = add_attendee(org, eid, email="a@example.com", tags=["x"])
    scan(c, s["gate_a"]["id"], person["qr"])
    scan(c, s["gate_b"]["id"], "nonsense")
    c.delete(f"/v1/events/{eid}/attendees/{add_attendee(org, eid, code='C-1')['id']}")
    assert c.delete(f"/v1/events/{eid}").status_code == 204
    for path in (
        "",
        "/zones",
        "/attendees",
        "/scans",
        "/stats",
        f"/attendees/{person['id']}",
        f"/zones/{s['zone']['id']}",
    ):
        assert_error(c.get(f"/v1/events/{eid}{path}"), 404, "not_found")
    assert_error(
        c.post(f"/v1/checkpoints/{s['gate_a']['id']}/scans", json={"code": "x"}), 404, "not_found"
    )
    # The slug is free again.
    assert c.post("/v1/events", json={"name": "Fest", "slug": "fest"}).status_code == 201
