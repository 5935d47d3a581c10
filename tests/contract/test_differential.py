"""The gate and the server must reach the same decision from the same facts.

A differential property test: hypothesis draws an event (zones and capacities, checkpoints with
max entries, re-entry, anti-passback, ticket types, tags, opening windows), attendees (tags,
revocations, validity windows, custom codes) and readings at one to three real gates that scan
offline from their caches. The gates then upload to a real server (SQLite) in a random order.

- One gate alone: every offline verdict equals the server's verdict of the uploaded reading, no
  conflict opens, and the zone occupancy and each attendee's presence and entries on the gate
  equal the server's, before the gate pulls again and after.
- Several gates: a conflict opens exactly where a gate's admission would have been denied with
  the union of every gate's readings of that attendee (in the order they happened), whatever
  the order in which the gates upload.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_server.api.deps import RateLimiter
from tests.contract import probes
from tests.server.conftest import Api, Org, live_api

pytestmark = pytest.mark.slow

TYPES = ("general", "vip")
TAGS = ("press", "crew")
MAX_EXAMPLES = int(os.environ.get("DOORCHECK_DIFF_EXAMPLES", "60"))


@dataclass(frozen=True)
class CheckpointSpec:
    zone: int | None  # index into the zones, or zoneless
    direction: str
    max_entries: int | None
    allow_reentry: bool
    anti_passback: bool
    allowed: tuple[str, ...]
    required: tuple[str, ...]
    excluded: tuple[str, ...]
    open_window: tuple[float | None, float | None]  # seconds from t0, half a second off a read


@dataclass(frozen=True)
class AttendeeSpec:
    ticket_type: str
    tags: tuple[str, ...]
    status: str
    validity: tuple[float | None, float | None]
    custom_code: bool


@dataclass(frozen=True)
class ReadingSpec:
    gate: int
    who: int  # an attendee; -1 an unknown code; -2 a malformed code
    checkpoint: int
    direction: str
    gap: int  # whole seconds after the previous reading
    manual: bool


@dataclass(frozen=True)
class Scenario:
    capacities: tuple[int | None, ...]
    type_windows: tuple[tuple[float | None, float | None], ...]
    checkpoints: tuple[CheckpointSpec, ...]
    attendees: tuple[AttendeeSpec, ...]
    readings: tuple[ReadingSpec, ...]
    gates: int
    upload_order: tuple[int, ...]


def _window() -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), st.sampled_from([-3600.5, 20.5, 60.5, 200.5, 900.5]))


def _span(
    draw: st.DrawFn, starts: st.SearchStrategy[float | None]
) -> tuple[float | None, float | None]:
    """A window (from, until) that never ends before it starts."""
    start, end = draw(starts), draw(_window())
    if start is not None and end is not None and end <= start:
        end = None
    return start, end


@st.composite
def scenarios(draw: st.DrawFn, *, gates: int) -> Scenario:
    zones = draw(st.integers(1, 2))
    # Capacity is judged in the order readings reach the server (docs/sync.md): with several
    # gates uploading out of order, only unlimited zones have an order-free answer.
    capacity = st.sampled_from([None, 1, 2, 3]) if gates == 1 else st.just(None)
    capacities = tuple(draw(capacity) for _ in range(zones))
    type_windows = tuple(
        _span(draw, st.one_of(st.none(), st.just(-3600.5), st.just(40.5))) for _ in TYPES
    )
    checkpoints = tuple(
        CheckpointSpec(
            zone=draw(st.one_of(st.none(), st.integers(0, zones - 1))),
            direction=draw(st.sampled_from(["in", "out", "both", "both"])),
            max_entries=draw(st.sampled_from([None, None, 1, 2])),
            allow_reentry=draw(st.booleans()),
            anti_passback=draw(st.booleans()),
            allowed=draw(st.sampled_from([(), (), ("general",), ("vip",)])),
            required=draw(st.sampled_from([(), (), ("press",)])),
            excluded=draw(st.sampled_from([(), (), ("crew",)])),
            open_window=_span(draw, st.one_of(st.none(), st.just(-60.5), st.just(30.5))),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    attendees = tuple(
        AttendeeSpec(
            ticket_type=draw(st.sampled_from(TYPES)),
            tags=tuple(sorted(draw(st.sets(st.sampled_from(TAGS))))),
            status=draw(st.sampled_from(["valid"] * 6 + ["revoked", "cancelled"])),
            validity=_span(draw, st.one_of(st.none(), st.just(15.5))),
            custom_code=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(1, 4)))
    )
    people = len(attendees)
    readings = tuple(
        ReadingSpec(
            gate=draw(st.integers(0, gates - 1)),
            who=draw(st.one_of(st.integers(0, people - 1), st.sampled_from([-1, -2]))),
            checkpoint=(cp := draw(st.integers(0, len(checkpoints) - 1))),
            direction=(
                checkpoints[cp].direction
                if checkpoints[cp].direction != "both"
                else draw(st.sampled_from(["in", "in", "out"]))
            ),
            gap=draw(st.sampled_from([1, 2, 4, 30, 90, 400])),
            manual=draw(st.integers(0, 9)) == 0,
        )
        for _ in range(draw(st.integers(1, 14 if gates == 1 else 18)))
    )
    order = tuple(draw(st.permutations(range(gates))))
    return Scenario(capacities, type_windows, checkpoints, attendees, readings, gates, order)


# -- the world: a server, an event built from the scenario, gates -------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[Api]:
    folder = Path(tempfile.mkdtemp(prefix="dc-diff-"))
    try:
        with live_api(f"sqlite:///{folder / 'server.db'}", folder) as api:
            # Every example pairs fresh gates: far more enrolments than a person would type.
            api.app.state.enroll_limiter = RateLimiter(1_000_000)
            yield api
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _at(t0: datetime, seconds: float | None) -> str | None:
    return None if seconds is None else (t0 + timedelta(seconds=seconds)).isoformat()


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@dataclass
class World:
    org: Org
    event_id: str
    zones: list[str]
    checkpoints: list[dict[str, Any]]
    people: list[dict[str, Any]]
    t0: datetime


def build(api: Api, sc: Scenario) -> World:
    org = api.new_org("Diff")
    c = org.client
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    event = _ok(c.post("/v1/events", json={"name": "Diff", "slug": "diff"}))
    eid = event["id"]
    for slug, (vf, vu) in zip(TYPES, sc.type_windows, strict=True):
        body = {"name": slug, "slug": slug, "is_vip": slug == "vip"}
        _ok(
            c.post(
                f"/v1/events/{eid}/ticket-types",
                json={**body, "valid_from": _at(t0, vf), "valid_until": _at(t0, vu)},
            )
        )
    zones = [
        _ok(c.post(f"/v1/events/{eid}/zones", json={"name": f"Z{i}", "capacity": cap}))["id"]
        for i, cap in enumerate(sc.capacities)
    ]
    checkpoints = [
        _ok(
            c.post(
                f"/v1/events/{eid}/checkpoints",
                json={
                    "name": f"CP{i}",
                    "zone_id": zones[cp.zone] if cp.zone is not None else None,
                    "direction": cp.direction,
                    "max_entries": cp.max_entries,
                    "allow_reentry": cp.allow_reentry,
                    "anti_passback": cp.anti_passback,
                    "allowed_ticket_types": list(cp.allowed),
                    "required_tags": list(cp.required),
                    "excluded_tags": list(cp.excluded),
                    "open_from": _at(t0, cp.open_window[0]),
                    "open_until": _at(t0, cp.open_window[1]),
                },
            )
        )
        for i, cp in enumerate(sc.checkpoints)
    ]
    people = [
        _ok(
            c.post(
                f"/v1/events/{eid}/attendees",
                json={
                    "first_name": f"P{i}",
                    "last_name": "Diff",
                    "ticket_type": a.ticket_type,
                    "tags": list(a.tags),
                    "status": a.status,
                    "valid_from": _at(t0, a.validity[0]),
                    "valid_until": _at(t0, a.validity[1]),
                    **({"code": f"CUSTOM-{i}"} if a.custom_code else {}),
                },
            )
        )
        for i, a in enumerate(sc.attendees)
    ]
    return World(org, eid, zones, checkpoints, people, t0)


def code_of(world: World, r: ReadingSpec) -> str:
    if r.who == -1:
        return "NOT-A-TICKET-42"
    if r.who == -2:
        return "DC1\x00\x01garbage"
    return str(world.people[r.who]["qr"])


# -- the property ---------------------------------------------------------------------------------
def run(api: Api, sc: Scenario) -> None:
    world = build(api, sc)
    folder = Path(tempfile.mkdtemp(prefix="dc-gates-"))
    gates = [probes.open_gate(folder / f"g{i}", api, world, i) for i in range(sc.gates)]
    try:
        at = world.t0
        taken: list[probes.Taken] = []
        for r in sc.readings:
            at += timedelta(seconds=r.gap)
            gate = gates[r.gate]
            cp = world.checkpoints[r.checkpoint]
            probes.put_on(gate, world.event_id, cp["id"], r.direction)
            gate.clock.now = at
            if r.manual and r.who >= 0:
                verdict = gate.check_in_attendee(world.people[r.who]["id"], r.direction)
            else:
                verdict = gate.submit(code_of(world, r))
            taken.append(probes.Taken(r, verdict, at))
        before = {z: probes.local_occupancy(gates[0], z) for z in world.zones}
        presence = {p["id"]: probes.gate_presence(gates[0], p["id"]) for p in world.people}
        for i in sc.upload_order:
            assert gates[i].sync_now(), gates[i].status().last_error
        for gate in gates:
            assert gate.sync_now(), gate.status().last_error
        if sc.gates == 1:
            check_one_gate(api, world, gates[0], taken, before, presence)
        else:
            check_many_gates(api, world, sc, taken)
    finally:
        for gate in gates:
            gate.close()
        shutil.rmtree(folder, ignore_errors=True)


def check_one_gate(
    api: Api,
    world: World,
    gate: Any,
    taken: list[probes.Taken],
    before: dict[str, int],
    presence: dict[str, probes.Presence],
) -> None:
    uploaded = probes.uploaded(gate)
    for t in taken:
        if t.verdict.id is None:
            continue  # a repeat within the double-read window is not a reading
        server = uploaded[t.verdict.id]
        assert server.state == "applied", (t, server)
        assert (server.status, server.reason) == (t.verdict.status, t.verdict.reason), (t, server)
    conflicts = probes.open_conflicts(world.org, world.event_id)
    assert conflicts == [], conflicts
    server_zones = probes.server_occupancy(world.org, world.event_id)
    for zone in world.zones:
        assert before[zone] == server_zones[zone], ("before pull", zone, before, server_zones)
        assert probes.local_occupancy(gate, zone) == server_zones[zone], ("after pull", zone)
    for person in world.people:
        server_state = probes.server_presence(api, person["id"])
        assert presence[person["id"]] == server_state, ("before pull", person["first_name"])
        assert probes.gate_presence(gate, person["id"]) == server_state, person["first_name"]


def check_many_gates(api: Api, world: World, sc: Scenario, taken: list[probes.Taken]) -> None:
    expected = probes.expected_conflicts(world, sc, taken)
    found = probes.conflicting_readings(world.org, world.event_id)
    assert found == expected, (found, expected, taken)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios(gates=1))
def test_one_gate_offline_agrees_with_the_server(server: Api, sc: Scenario) -> None:
    run(server, sc)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=st.integers(2, 3).flatmap(lambda n: scenarios(gates=n)))
def test_several_gates_conflict_exactly_where_the_union_denies(server: Api, sc: Scenario) -> None:
    run(server, sc)
