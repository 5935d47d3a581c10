"""The zone counter at the door equals the server's occupancy after sync and moves by exactly one
per admit and exit (issue 18: "Workshop room: 6 / 5" after five admits)."""

from __future__ import annotations

from collections.abc import Callable

from scanner_app.gate import Gate
from tests.scanner.conftest import Door
from tests.scanner.test_gate import wait_for


def _server_occupancy(door: Door) -> int:
    stats = door.org.client.get(f"/v1/events/{door.event_id}/stats").json()
    zones = stats.get("zones") or []
    return int(zones[0]["occupancy"]) if zones else -1


def test_the_counter_moves_by_one_and_matches_the_server_after_sync(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    gate = make_gate()
    assert gate.sync_now()
    gate.start()
    seen = [gate.stats().occupancy]
    people = door.people
    for person in people:
        assert gate.submit(person["qr"]).accepted
        seen.append(gate.stats().occupancy)
    assert seen == list(range(len(people) + 1)), seen
    assert wait_for(lambda: gate.status().pending == 0)
    assert wait_for(lambda: _server_occupancy(door) == len(people))
    assert gate.sync_now()
    for _ in range(3):  # after more syncs the counter still says what the server says
        assert gate.sync_now()
        assert gate.stats().occupancy == len(people) == _server_occupancy(door)
    gate.set_direction("out")
    assert gate.submit(people[0]["qr"]).accepted
    assert gate.stats().occupancy == len(people) - 1
    assert wait_for(lambda: gate.status().pending == 0)
    assert wait_for(lambda: _server_occupancy(door) == len(people) - 1)
    for _ in range(3):
        assert gate.sync_now()
        assert gate.stats().occupancy == len(people) - 1 == _server_occupancy(door)
