"""The headless gate against a real server on loopback: pairing, cache, the pipeline, the queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scanner_app.gate import Gate, GateError, PairingError, WalkinInvalid
from tests.scanner.conftest import Door


def test_pair_sync_and_scan_online(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.paired
    assert [e.id for e in gate.events()] == [door.event_id]
    assert gate.sync_now()
    assert gate.status().attendees_cached == 3
    ana = door.people[0]
    verdict = gate.submit(ana["qr"])
    assert verdict.status == "accepted" and verdict.reason == "ok"
    assert verdict.attendee is not None and verdict.attendee.first_name == "Ana"
    assert not verdict.offline
    again = gate.submit(ana["qr"])
    assert again.reason == "duplicate_scan" and again.id is None
    assert gate.sync_now()
    scans = door.server_scans()
    assert [(s["id"], s["status"]) for s in scans] == [(verdict.id, "accepted")]
    assert gate.status().pending == 0
