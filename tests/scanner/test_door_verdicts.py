"""SPEC section 11 at a real gate (its SQLite store, paired with a server on loopback): a code
read again within the double-read window repeats the verdict on record without a new reading,
and every denial says what to do next."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from scanner_app.gate import Gate
from tests.scanner.conftest import Clock, Door
from tests.server.conftest import add_attendee


def _patch(door: Door, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = door.org.client.patch(f"/v1/events/{door.event_id}/{path}", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _readings(gate: Gate) -> int:
    row = gate.store.one("SELECT count(*) FROM readings")
    return int(row[0]) if row else 0


def test_a_denied_rescan_keeps_its_reason_and_an_admitted_one_stays_green(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    clock = Clock()
    gate = make_gate(clock=clock)
    assert gate.sync_now()
    ana = door.people[0]
    admitted = gate.submit(ana["qr"])
    clock.advance(1)
    twice = gate.submit(ana["qr"])
    assert (twice.status, twice.reason, twice.repeat, twice.id) == ("accepted", "ok", True, None)
    assert twice.detail is None and not twice.warnings  # green: no deny, no warning
    assert gate.stats().occupancy == 1 and gate.stats().entries_today == 1

    clock.advance(10)
    denied = gate.submit(ana["qr"])
    assert (denied.reason, denied.repeat) == ("already_inside", False) and denied.id
    clock.advance(2)
    again = gate.submit(ana["qr"])
    assert (again.status, again.reason, again.repeat, again.id) == (
        "denied",
        "already_inside",
        True,
        None,
    )
    assert again.detail == denied.detail and again.detail is not None
    assert again.detail.name == "Ana Ruiz" and again.detail.via_checkpoint_name == "Gate A"
    assert again.detail.inside_since == admitted.scanned_at
    assert again.inside_via == "Gate A" and again.inside_since == admitted.scanned_at
    assert _readings(gate) == 2 and gate.status().pending == 2
    clock.advance(3)
    assert not gate.submit(ana["qr"]).repeat  # the window is over: a new reading
    assert _readings(gate) == 3
    assert gate.sync_now()
    assert len(door.server_scans()) == 3


def test_an_unknown_code_read_twice_is_one_reading(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    clock = Clock()
    gate = make_gate(clock=clock)
    assert gate.sync_now()
    first = gate.submit("NOBODY-0000-1111", source="keyboard")
    clock.advance(0.5)
    again = gate.submit("NOBODY-0000-1111", source="keyboard")
    assert (first.reason, again.reason, again.repeat, again.id) == (
        "unknown_code",
        "unknown_code",
        True,
        None,
    )
    assert again.detail is not None and again.detail.code == "NOBODY…1111"
    assert not gate.submit("NOBODY-0000-2222").repeat  # another code
    assert _readings(gate) == 2


def test_malformed_and_forged_codes_are_named(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.sync_now()
    malformed = gate.submit("\x01\x02 not a ticket")
    assert (malformed.reason, malformed.message) == ("malformed_code", "Not a ticket")
    qr = door.people[0]["qr"]
    raw = bytearray(base64.b32decode(qr[3:] + "=" * (-len(qr[3:]) % 8)))
    raw[-5] ^= 0xFF  # a byte of the signature
    forged = "DC1" + base64.b32encode(bytes(raw)).decode().rstrip("=")
    verdict = gate.submit(forged)
    assert (verdict.reason, verdict.message) == ("invalid_signature", "Forged or damaged ticket")
    assert verdict.detail is not None and verdict.detail.code == forged[:6] + "…" + forged[-4:]


def test_each_denial_says_what_to_do(door: Door, make_gate: Callable[..., Gate]) -> None:
    c = door.org.client
    lounge = c.post(
        f"/v1/events/{door.event_id}/checkpoints",
        json={
            "name": "VIP lounge",
            "zone_id": door.event["zone"]["id"],
            "allowed_ticket_types": ["vip"],
        },
    ).json()
    _patch(door, f"checkpoints/{door.event['gate_b']['id']}", {"max_entries": 1})
    clock = Clock()
    gate_b = make_gate("b", checkpoint="gate_b", clock=clock)
    assert gate_b.sync_now()
    ana, bo, cy = door.people

    assert gate_b.submit(ana["qr"]).accepted
    assert gate_b.sync_now()  # the lounge gate learns of it
    clock.advance(5)
    gate_a = make_gate("a", direction="out", clock=clock)
    assert gate_a.sync_now() and gate_a.submit(ana["qr"]).accepted  # Ana leaves
    assert gate_a.sync_now() and gate_b.sync_now()
    clock.advance(5)
    no_more = gate_b.submit(ana["qr"])
    assert no_more.reason == "max_entries_reached" and no_more.detail is not None
    assert (no_more.detail.entries_used, no_more.detail.entries_allowed) == (1, 1)
    assert no_more.detail.last_entry_at is not None

    lounge_gate = make_gate("lounge", checkpoint="gate_a", clock=clock)
    lounge_gate.configure(door.event_id, lounge["id"], "in", "Op")
    assert lounge_gate.sync_now()
    refused = lounge_gate.submit(cy["code"])
    assert refused.reason == "ticket_type_not_allowed" and refused.detail is not None
    assert refused.detail.ticket_type == "general"
    assert set(refused.detail.accepted_at_names) == {"Gate A", "Gate B"}
    assert lounge_gate.submit(bo["qr"]).accepted and lounge_gate.sync_now()  # Bo is inside

    _patch(door, f"zones/{door.event['zone']['id']}", {"capacity": 1})
    assert gate_b.sync_now()
    dee = add_attendee(door.org, door.event_id, first_name="Dee", last_name="Fox")
    full = gate_b.submit(dee["qr"])
    assert full.reason == "zone_full" and full.detail is not None
    assert (full.detail.occupancy, full.detail.capacity) == (1, 1)
    assert full.detail.code and "…" in full.detail.code
