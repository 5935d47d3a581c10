"""Online scans through the API, one test per rule of SPEC section 6, the idempotent scan id, the
event's stats and the filters of the reading log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.server.conftest import Api, Org, add_attendee, assert_error, scan, setup_event


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def _reason(client: httpx.Client, checkpoint_id: str, code: str, **extra: Any) -> str:
    result = scan(client, checkpoint_id, code, **extra)
    verdict = result["verdict"]
    assert (verdict["status"] == "accepted") == (verdict["reason"] == "ok"), verdict
    return str(verdict["reason"])


def _gate(org: Org, eid: str, **fields: Any) -> str:
    response = org.client.post(f"/v1/events/{eid}/checkpoints", json={"name": "Gate", **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_gate_rules(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, zone = s["id"], s["zone"]["id"]
    cp_url = f"/v1/events/{eid}/checkpoints"

    inactive = _gate(org, eid, zone_id=zone, active=False)
    person = add_attendee(org, eid)
    assert _reason(c, inactive, person["qr"]) == "checkpoint_inactive"
    c.patch(f"{cp_url}/{inactive}", json={"active": True})
    assert _reason(c, inactive, person["qr"]) == "ok"

    later = _gate(org, eid, open_from=_at(timedelta(hours=1)))
    over = _gate(org, eid, open_until=_at(-timedelta(hours=1)), direction="both")
    now_open = _gate(
        org, eid, open_from=_at(-timedelta(hours=1)), open_until=_at(timedelta(hours=1))
    )
    fresh = add_attendee(org, eid)
    assert _reason(c, later, fresh["qr"]) == "checkpoint_closed"
    assert _reason(c, over, fresh["qr"]) == "checkpoint_closed"
    # A closed gate still lets people out.
    assert _reason(c, over, fresh["qr"], direction="out") == "ok"
    assert _reason(c, now_open, fresh["qr"]) == "ok"
    c.patch(f"{cp_url}/{later}", json={"open_from": None})
    assert _reason(c, later, add_attendee(org, eid)["qr"]) == "ok"

    # An inactive gate refuses before anything else is looked at.
    c.patch(f"{cp_url}/{later}", json={"active": False})
    revoked = add_attendee(org, eid, status="revoked")
    assert _reason(c, later, revoked["qr"]) == "checkpoint_inactive"


def test_ticket_rules(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, gate = s["id"], s["gate_a"]["id"]
    base = f"/v1/events/{eid}/attendees"

    person = add_attendee(org, eid)
    c.patch(f"{base}/{person['id']}", json={"status": "cancelled"})
    assert _reason(c, gate, person["qr"]) == "cancelled"
    c.patch(f"{base}/{person['id']}", json={"status": "revoked"})
    assert _reason(c, gate, person["qr"]) == "revoked"
    c.patch(f"{base}/{person['id']}", json={"status": "valid"})
    assert _reason(c, gate, person["qr"]) == "ok"
    # Revoking someone inside does not let them leave any less.
    c.patch(f"{base}/{person['id']}", json={"status": "revoked"})
    out = scan(c, gate, person["qr"], direction="out")
    assert out["verdict"]["status"] == "accepted" and out["verdict"]["warnings"] == []

    tts = f"/v1/events/{eid}/ticket-types"
    tomorrow = c.post(
        tts, json={"name": "Tomorrow", "slug": "tomorrow", "valid_from": _at(timedelta(days=1))}
    ).json()
    yesterday = c.post(
        tts, json={"name": "Yesterday", "slug": "yesterday", "valid_until": _at(-timedelta(days=1))}
    ).json()
    early = add_attendee(org, eid, ticket_type="tomorrow")
    late = add_attendee(org, eid, ticket_type="yesterday")
    assert _reason(c, gate, early["qr"]) == "not_yet_valid"
    assert _reason(c, gate, late["qr"]) == "expired"
    # The ticket type's window is read at scan time: widening it lets them in.
    c.patch(f"{tts}/{tomorrow['id']}", json={"valid_from": _at(-timedelta(hours=1))})
    c.patch(f"{tts}/{yesterday['id']}", json={"valid_until": None})
    assert _reason(c, gate, early["qr"]) == "ok"
    assert _reason(c, gate, late["qr"]) == "ok"
    # The attendee's own window narrows the type's.
    own = add_attendee(org, eid, valid_until=_at(-timedelta(minutes=1)))
    assert _reason(c, gate, own["qr"]) == "expired"


def test_checkpoint_policies(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, zone = s["id"], s["zone"]["id"]
    vip_door = _gate(org, eid, zone_id=zone, allowed_ticket_types=["vip"])
    press = _gate(org, eid, required_tags=["press", "crew"])
    no_banned = _gate(org, eid, excluded_tags=["banned"])
    general = add_attendee(org, eid)
    vip = add_attendee(org, eid, ticket_type="vip")
    assert _reason(c, vip_door, general["qr"]) == "ticket_type_not_allowed"
    assert _reason(c, vip_door, vip["qr"]) == "ok"

    assert _reason(c, press, general["qr"]) == "tag_required"
    assert _reason(c, press, add_attendee(org, eid, tags=["crew"])["qr"]) == "ok"  # any of

    banned = add_attendee(org, eid, tags=["press", "banned"])
    assert _reason(c, no_banned, banned["qr"]) == "tag_excluded"
    assert _reason(c, no_banned, general["qr"]) == "ok"
    # Tags are read at scan time.
    c.patch(f"/v1/events/{eid}/attendees/{banned['id']}", json={"tags": ["press"]})
    assert _reason(c, no_banned, banned["qr"]) == "ok"


def test_presence_rules(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, zone = s["id"], s["zone"]["id"]
    a, b = s["gate_a"]["id"], s["gate_b"]["id"]
    person = add_attendee(org, eid)
    qr = person["qr"]

    assert _reason(c, a, qr) == "ok"
    again = scan(c, b, qr)["verdict"]
    assert again["reason"] == "already_inside" and again["via_checkpoint_id"] == a
    assert again["inside_since"] is not None
    assert _reason(c, a, qr, direction="out") == "ok"
    assert _reason(c, b, qr) == "ok"  # out and in again: fine by default

    # Exits without an entry are let through with a warning and do not count.
    stranger = add_attendee(org, eid)
    out = scan(c, a, stranger["qr"], direction="out")
    assert out["verdict"]["status"] == "accepted" and out["verdict"]["warnings"] == ["not_inside"]
    assert c.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == 1

    # A gate that only lets people out.
    exit_only = _gate(org, eid, zone_id=zone, direction="out")
    leaving = scan(c, exit_only, qr)
    assert leaving["direction"] == "out" and leaving["verdict"]["reason"] == "ok"
    assert c.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == 0
    # A fixed gate refuses the other direction outright: it is not a reading.
    for gate, wrong in ((b, "out"), (exit_only, "in")):
        error = assert_error(
            c.post(f"/v1/checkpoints/{gate}/scans", json={"code": qr, "direction": wrong}),
            422,
            "validation_error",
        )
        assert {d["field"] for d in error["details"]} == {"direction"}
    # Without anti-passback a second entry is let in.
    open_door = _gate(org, eid, zone_id=zone, anti_passback=False)
    assert _reason(c, open_door, qr) == "ok"
    assert _reason(c, open_door, qr) == "ok"


def test_reentry_and_max_entries(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, zone = s["id"], s["zone"]["id"]
    once = _gate(org, eid, zone_id=zone, direction="both", allow_reentry=False)
    person = add_attendee(org, eid)
    assert _reason(c, once, person["qr"]) == "ok"
    assert _reason(c, once, person["qr"], direction="out") == "ok"
    assert _reason(c, once, person["qr"]) == "reentry_not_allowed"
    # Re-entry counts entries into the zone, through any gate.
    other = add_attendee(org, eid)
    assert _reason(c, s["gate_a"]["id"], other["qr"]) == "ok"
    assert _reason(c, s["gate_a"]["id"], other["qr"], direction="out") == "ok"
    assert _reason(c, once, other["qr"]) == "reentry_not_allowed"

    twice = _gate(org, eid, zone_id=zone, direction="both", max_entries=2, anti_passback=False)
    guest = add_attendee(org, eid)
    assert [_reason(c, twice, guest["qr"]) for _ in range(3)] == ["ok", "ok", "max_entries_reached"]
    # The limit is per checkpoint: another gate still admits.
    assert _reason(c, s["gate_a"]["id"], guest["qr"], direction="out") == "ok"
    assert _reason(c, s["gate_a"]["id"], guest["qr"]) == "ok"
    assert c.get(f"/v1/events/{eid}/attendees/{guest['id']}").json()["entries"] == 3
    never = _gate(org, eid, max_entries=0)
    assert _reason(c, never, add_attendee(org, eid)["qr"]) == "max_entries_reached"


def test_zone_full(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org, zone_capacity=1)
    eid, zone = s["id"], s["zone"]["id"]
    a, b = s["gate_a"]["id"], s["gate_b"]["id"]
    first, second = add_attendee(org, eid), add_attendee(org, eid, ticket_type="vip")
    assert _reason(c, a, first["qr"]) == "ok"
    assert _reason(c, b, second["qr"]) == "zone_full"
    assert c.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == 1
    assert _reason(c, a, first["qr"], direction="out") == "ok"
    assert _reason(c, b, second["qr"]) == "ok"
    # Raising the capacity takes effect at once.
    c.patch(f"/v1/events/{eid}/zones/{zone}", json={"capacity": 2})
    assert _reason(c, a, first["qr"]) == "ok"
    assert c.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == 2
    c.patch(f"/v1/events/{eid}/zones/{zone}", json={"capacity": 0})
    assert _reason(c, a, add_attendee(org, eid)["qr"]) == "zone_full"
    # A gate with no zone counts no one and is never full.
    lobby = _gate(org, eid)
    assert _reason(c, lobby, add_attendee(org, eid)["qr"]) == "ok"


def test_idempotent_scan_id(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, a = s["id"], s["gate_a"]["id"]
    person = add_attendee(org, eid, first_name="Idem")
    scan_id = str(uuid.uuid4())
    first = scan(
        c, a, person["qr"], id=scan_id, operator="Pat", scanned_at=_at(-timedelta(seconds=5))
    )
    assert first["scan_id"] == scan_id and first["verdict"]["reason"] == "ok"
    again = scan(c, a, person["qr"], id=scan_id)
    assert again == first  # the first answer, not "already inside"
    other_code = scan(c, a, "something else", id=scan_id)
    assert other_code == first
    assert_error(
        c.post(
            f"/v1/checkpoints/{s['gate_b']['id']}/scans", json={"code": person["qr"], "id": scan_id}
        ),
        409,
        "conflict",
    )
    log = c.get(f"/v1/events/{eid}/scans").json()["data"]
    assert [r["id"] for r in log] == [scan_id]
    assert log[0]["operator"] == "Pat" and log[0]["scanned_at"] == first["scanned_at"]
    assert c.get(f"/v1/events/{eid}/attendees/{person['id']}").json()["entries"] == 1
    denied_id = "denied-scan-0001"
    denied = scan(c, a, "NOPE", id=denied_id)
    assert scan(c, a, "NOPE", id=denied_id) == denied
    assert denied["verdict"]["reason"] == "unknown_code" and denied["attendee"] is None


def test_stats(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org, zone_capacity=10)
    eid, zone = s["id"], s["zone"]["id"]
    a, b = s["gate_a"]["id"], s["gate_b"]["id"]
    ana, bo, cy = (
        add_attendee(org, eid),
        add_attendee(org, eid, ticket_type="vip"),
        add_attendee(org, eid, status="cancelled"),
    )
    add_attendee(org, eid)  # never comes
    empty = c.get(f"/v1/events/{eid}/stats").json()
    assert empty["unique_attendees_in"] == 0 and empty["denied_by_reason"] == {}
    assert {t["slug"]: t["attendees"] for t in empty["ticket_types"]} == {"general": 3, "vip": 1}

    scan(c, a, ana["qr"])  # in  (A)
    scan(c, b, ana["qr"])  # already_inside (B)
    scan(c, a, ana["qr"], direction="out")  # out (A)
    scan(c, b, ana["qr"])  # in  (B)
    scan(c, b, bo["qr"])  # in  (B)
    scan(c, a, cy["qr"])  # cancelled (A)
    scan(c, a, "garbage")  # unknown_code (A)
    scan(c, a, bo["qr"], direction="out")  # out (A)

    stats = c.get(f"/v1/events/{eid}/stats").json()
    assert stats["object"] == "event_stats" and stats["event_id"] == eid
    assert stats["zones"] == [{"id": zone, "name": "Main hall", "capacity": 10, "occupancy": 1}]
    assert stats["unique_attendees_in"] == 2
    gates = {g["id"]: g for g in stats["checkpoints"]}
    assert {k: gates[a][k] for k in ("entries", "exits", "denied", "unique_in")} == {
        "entries": 1,
        "exits": 2,
        "denied": 2,
        "unique_in": 1,
    }
    assert {k: gates[b][k] for k in ("entries", "exits", "denied", "unique_in")} == {
        "entries": 2,
        "exits": 0,
        "denied": 1,
        "unique_in": 2,
    }
    types = {t["slug"]: t for t in stats["ticket_types"]}
    assert (types["general"]["entries"], types["general"]["unique_in"]) == (2, 1)
    assert (types["vip"]["entries"], types["vip"]["unique_in"], types["vip"]["attendees"]) == (
        1,
        1,
        1,
    )
    assert stats["denied_by_reason"] == {"already_inside": 1, "cancelled": 1, "unknown_code": 1}
    assert sum(m["scans"] for m in stats["scans_per_minute"]) == 8
    assert all(m["minute"].endswith(":00Z") for m in stats["scans_per_minute"])


def test_scan_log_filters(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    a, b = s["gate_a"]["id"], s["gate_b"]["id"]
    ana, bo = add_attendee(org, eid), add_attendee(org, eid)
    scan(c, a, ana["qr"], operator="Pat")
    scan(c, b, ana["qr"])
    scan(c, b, bo["qr"])
    scan(c, a, "junk")
    url = f"/v1/events/{eid}/scans"

    def log(**params: Any) -> list[dict[str, Any]]:
        response = c.get(url, params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    everything = log()
    assert len(everything) == 4
    newest = everything[0]
    assert newest["object"] == "scan" and newest["code"] == "junk" and newest["attendee_id"] is None
    assert (newest["status"], newest["reason"], newest["offline"], newest["manual"]) == (
        "denied",
        "unknown_code",
        False,
        False,
    )
    oldest = everything[-1]
    assert (
        oldest["attendee_id"],
        oldest["checkpoint_id"],
        oldest["zone_id"],
        oldest["operator"],
        oldest["direction"],
        oldest["code"],
    ) == (ana["id"], a, s["zone"]["id"], "Pat", "in", ana["qr"])
    assert [r["checkpoint_id"] for r in log(checkpoint=a)] == [a, a]
    assert [r["attendee_id"] for r in log(attendee=ana["id"])] == [ana["id"]] * 2
    assert [r["reason"] for r in log(status="denied")] == ["unknown_code", "already_inside"]
    assert len(log(status="accepted")) == 2
    assert [r["attendee_id"] for r in log(checkpoint=b, status="accepted")] == [bo["id"]]
    assert log(device="dev_nothing") == [] and log(status="maybe") == []
    assert log(checkpoint="' OR 1=1 --") == []
    assert_error(c.get(url, params={"checkpoint": "c" * 41}), 422, "validation_error")
