"""Supervisor override at a real gate (SPEC section 11): the PIN checked offline against the
hash sync brought, the admission recorded with `override` and synced, wrong PINs refused and
rate-limited across a restart, and a bad reason or note refused before any PIN is tried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scanner_app.errors import OverrideRefused, Problem
from scanner_app.gate import Gate
from scanner_app.override import OverrideRequest, pin_tries
from tests.conftest import serve
from tests.scanner.conftest import Clock, Door

NOTE = "Organizer's guest, ID checked"


def _with_pin(door: Door, pin: str = "2468") -> None:
    response = door.org.client.patch(f"/v1/events/{door.event_id}", json={"override_pin": pin})
    assert response.status_code == 200, response.text


def _ask(target: str, pin: str = "2468", reason: str = "vip", note: str = NOTE) -> OverrideRequest:
    return OverrideRequest(target, pin, reason, note, operator="Marta")


def _refused(gate: Gate, request: OverrideRequest) -> OverrideRefused:
    with pytest.raises(OverrideRefused) as refused:
        gate.override(request)
    return refused.value


def test_the_right_pin_admits_a_denied_guest_offline_and_it_syncs(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    _with_pin(door)
    clock = Clock()
    gate = make_gate(clock=clock)
    assert gate.sync_now()
    ana = door.people[0]
    assert gate.submit(ana["qr"]).accepted
    clock.advance(60)
    door.api.live.stop()  # offline from here: the PIN is checked against the cached hash
    denied = gate.submit(ana["qr"])
    assert denied.reason == "already_inside"
    clock.advance(1)  # within the double-read window: the override still records
    verdict = gate.override(_ask(ana["qr"]))
    assert (verdict.status, verdict.reason, verdict.override) == ("accepted", "ok", True)
    assert verdict.override_reason == "vip" and verdict.overridden_reason == "already_inside"
    assert verdict.id is not None and not verdict.repeat
    assert gate.stats().occupancy == 2  # counted like an entry
    logged = gate.recent(1)[0]
    assert logged.id == verdict.id and logged.override and logged.override_reason == "vip"
    by_search = gate.override(_ask(door.people[1]["id"], reason="staff_decision"))
    assert by_search.accepted and not by_search.override and by_search.manual  # no denial
    files = [p for p in gate.data_dir.iterdir() if p.is_file()]
    assert files and not any(b"Organizer's guest" in p.read_bytes() for p in files)  # sealed

    door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))
    assert gate.sync_now()
    scans = {s["id"]: s for s in door.server_scans()}
    stored = scans[verdict.id]
    assert stored["override"] is True and stored["status"] == "accepted"
    assert stored["override_reason"] == "vip" and stored["override_note"] == NOTE
    assert stored["overridden_reason"] == "already_inside" and stored["operator"] == "Marta"
    conflicts = door.org.client.get(f"/v1/events/{door.event_id}/conflicts").json()["data"]
    assert conflicts == []


def test_wrong_pins_are_refused_and_rate_limited_across_a_restart(
    door: Door, make_gate: Callable[..., Gate], tmp_path: Path
) -> None:
    _with_pin(door)
    clock = Clock()
    gate = make_gate("g", clock=clock)
    assert gate.sync_now()
    ana = door.people[0]
    assert gate.submit(ana["qr"]).accepted
    clock.advance(60)
    for _ in range(3):  # three free tries
        wrong = _refused(gate, _ask(ana["qr"], pin="1111"))
        assert wrong.code is Problem.OVERRIDE_PIN_WRONG and wrong.field == "pin"
    assert wrong.retry_after == 1
    waiting = _refused(gate, _ask(ana["qr"]))  # even the right PIN waits
    assert waiting.code is Problem.OVERRIDE_WAIT and waiting.retry_after == 1
    clock.advance(1)
    assert _refused(gate, _ask(ana["qr"], pin="abc")).retry_after == 2  # not even digits
    assert pin_tries(gate.store).failures == 4
    gate.close()

    again = Gate(tmp_path / "g", clock=clock)  # a restart keeps the count and the wait
    assert _refused(again, _ask(ana["qr"])).code is Problem.OVERRIDE_WAIT
    clock.advance(2)
    verdict = again.override(_ask(ana["qr"]))
    assert verdict.override and pin_tries(again.store).failures == 0
    readings = again.store.query("SELECT status FROM readings ORDER BY seq")
    assert [r["status"] for r in readings] == ["accepted", "accepted"]  # no wrong PIN recorded
    again.close()


def test_bad_requests_are_refused_before_the_pin(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    gate = make_gate()
    assert gate.sync_now()
    ana = door.people[0]
    no_pin = _refused(gate, _ask(ana["qr"]))
    assert no_pin.code is Problem.OVERRIDE_UNAVAILABLE
    _with_pin(door)
    assert gate.sync_now()
    for request, field in (
        (_ask(ana["qr"], reason="because"), "reason"),
        (_ask(ana["qr"], note="   "), "note"),
        (_ask(ana["qr"], note="x" * 10_240), "note"),
        (_ask(ana["qr"], note="nul\x00"), "note"),
        (_ask(""), "code"),
        (_ask("NOBODY-123"), "code"),  # a code that names nobody cannot be let in
    ):
        refused = _refused(gate, request)
        assert (refused.code, refused.field) == (Problem.OVERRIDE_INVALID, field)
    assert pin_tries(gate.store).failures == 0
    assert gate.store.one("SELECT count(*) FROM readings")[0] == 0
    # The PIN cleared on the server: the gate hears of it on its next sync.
    response = door.org.client.patch(f"/v1/events/{door.event_id}", json={"override_pin": None})
    assert response.status_code == 200
    assert gate.sync_now()
    assert _refused(gate, _ask(ana["qr"])).code is Problem.OVERRIDE_UNAVAILABLE
