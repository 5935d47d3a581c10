"""The main path end to end over real HTTP: event, attendee, online scans, stats."""

from __future__ import annotations

from tests.server.conftest import Api, Org, setup_event


def test_register_scan_and_see_occupancy(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org, zone_capacity=10)
    eid = s["id"]
    created = c.post(
        f"/v1/events/{eid}/registrations",
        json={
            "first_name": "Ana",
            "last_name": "Ruiz",
            "email": "Ana@Example.com",
            "ticket_type": "vip",
        },
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["qr"].startswith("DC1") and person["source"] == "api"
    gate = s["gate_a"]["id"]
    first = c.post(f"/v1/checkpoints/{gate}/scans", json={"code": person["qr"].lower() + "\r\n"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["verdict"]["status"] == "accepted" and body["attendee"]["is_vip"]
    again = c.post(f"/v1/checkpoints/{s['gate_b']['id']}/scans", json={"code": person["qr"]}).json()
    assert again["verdict"]["reason"] == "already_inside"
    assert again["verdict"]["via_checkpoint_id"] == gate
    zone = c.get(f"/v1/events/{eid}/zones/{s['zone']['id']}").json()
    assert zone["occupancy"] == 1
    out = c.post(f"/v1/checkpoints/{gate}/scans", json={"code": person["qr"], "direction": "out"})
    assert out.json()["verdict"]["status"] == "accepted"
    stats = c.get(f"/v1/events/{eid}/stats").json()
    assert stats["zones"][0]["occupancy"] == 0
    assert stats["denied_by_reason"] == {"already_inside": 1}
    dup = c.post(
        f"/v1/events/{eid}/registrations",
        json={
            "first_name": "Ana",
            "last_name": "R",
            "email": "ana@example.COM",
            "ticket_type": "vip",
        },
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"
