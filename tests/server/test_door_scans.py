"""SPEC section 11 on the online scan endpoint (real HTTP, SQLite and PostgreSQL): a device's
double read repeats the verdict on record without recording it, and every denial carries its
detail (`verdict.detail`, shaped by `shared.denials.DenialDetailJSON`)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.conftest import Api, Org, add_attendee, scan, setup_event
from tests.server.test_sync import Gate as Device


def _as_device(api: Api, org: Org, name: str) -> httpx.Client:
    return Device(api, org, name).client


def test_a_devices_double_read_repeats_the_verdict_on_record(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid = s["id"]
    ana = add_attendee(org, eid)
    device = _as_device(api, org, "Door 1")
    a, b = s["gate_a"]["id"], s["gate_b"]["id"]
    first = scan(device, a, ana["qr"])
    twice = scan(device, a, ana["qr"])
    assert first["recorded"] and not first["verdict"]["repeat"]
    assert not twice["recorded"] and twice["scan_id"] is None
    assert twice["verdict"] | {"repeat": False} == first["verdict"]  # green, same reason
    denied = scan(device, b, ana["qr"])
    again = scan(device, b, ana["qr"])
    assert denied["verdict"]["reason"] == again["verdict"]["reason"] == "already_inside"
    assert again["verdict"]["repeat"] and not again["recorded"]
    assert again["verdict"]["detail"] == denied["verdict"]["detail"]
    detail = denied["verdict"]["detail"]
    assert detail["name"] == "Ana Ruiz" and detail["via_checkpoint_id"] == a
    assert detail["via_checkpoint_name"] == "Gate A" and detail["inside_since"]
    assert detail["code"] == ana["qr"][:6] + "…" + ana["qr"][-4:]
    log = org.client.get(f"/v1/events/{eid}/scans").json()["data"]
    assert len(log) == 2
    stats = org.client.get(f"/v1/events/{eid}/stats").json()
    assert stats["zones"][0]["occupancy"] == 1
    assert stats["denied_by_reason"] == {"already_inside": 1}
    # An API key has no double reads: each scan is a reading.
    assert scan(org.client, b, ana["qr"])["recorded"]
    assert scan(org.client, b, ana["qr"])["recorded"]


def test_denials_say_what_to_do(api: Api, org: Org) -> None:
    s = setup_event(org, zone_capacity=1)
    eid, c = s["id"], org.client
    lounge = c.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Lounge", "allowed_ticket_types": ["vip"], "max_entries": 1},
    ).json()
    ana, bo = add_attendee(org, eid), add_attendee(org, eid, first_name="Bo", ticket_type="vip")
    refused = scan(c, lounge["id"], ana["qr"])["verdict"]
    assert refused["reason"] == "ticket_type_not_allowed"
    assert refused["detail"]["ticket_type"] == "general"
    assert refused["detail"]["accepted_at"] == [s["gate_a"]["id"], s["gate_b"]["id"]]
    assert refused["detail"]["accepted_at_names"] == ["Gate A", "Gate B"]
    assert scan(c, s["gate_a"]["id"], ana["qr"])["verdict"]["reason"] == "ok"
    full = scan(c, s["gate_b"]["id"], bo["qr"])["verdict"]
    assert full["reason"] == "zone_full"
    assert (full["detail"]["occupancy"], full["detail"]["capacity"]) == (1, 1)
    first = scan(c, lounge["id"], bo["qr"])
    assert first["verdict"]["reason"] == "ok"
    scan(c, lounge["id"], bo["qr"], direction="in")  # anti-passback: already inside
    c.patch(f"/v1/events/{eid}/checkpoints/{lounge['id']}", json={"anti_passback": False})
    no_more = scan(c, lounge["id"], bo["qr"])["verdict"]
    assert no_more["reason"] == "max_entries_reached"
    assert (no_more["detail"]["entries_used"], no_more["detail"]["entries_allowed"]) == (1, 1)
    assert no_more["detail"]["last_entry_at"] == first["scanned_at"].replace("+00:00", "Z")
    unknown = scan(c, lounge["id"], "no such ticket at all")["verdict"]
    assert unknown["detail"]["code"] == "no suc… all" and unknown["detail"]["name"] == ""
    assert scan(c, s["gate_a"]["id"], "\x01")["verdict"]["message"] == "Not a ticket"


def test_the_openapi_answer_types_the_detail(api: Api) -> None:
    schema = httpx.get(f"{api.url}/openapi.json").json()
    verdict: dict[str, Any] = schema["components"]["schemas"]["VerdictPublic"]["properties"]
    assert "repeat" in verdict and "detail" in verdict
    detail = schema["components"]["schemas"]["DenialDetailJSON"]["properties"]
    assert {"accepted_at_names", "via_checkpoint_name", "occupancy", "capacity"} <= set(detail)
