"""What the differential test reads on each side, and its own oracle for several gates.

The readers look at each side's own records (the gate's store, the server's database and API);
the oracle re-decides the union of the gates' readings with `shared.rules.decide` alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from scanner_app.gate import Gate
from shared.history import history_from_state
from shared.rules import (
    AttendeeStatus,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    History,
    Reading,
    Reason,
    ScanInput,
    Status,
    Ticket,
    decide,
)
from tests.scanner.conftest import Clock
from tests.server.conftest import Api, Org

if TYPE_CHECKING:
    from tests.contract.test_differential import ReadingSpec, Scenario, World

Presence = dict[str, Any]


@dataclass(frozen=True)
class Taken:
    """A reading as a gate took it: what was asked, what it answered, when."""

    spec: ReadingSpec
    verdict: Any
    at: datetime


@dataclass(frozen=True)
class Uploaded:
    state: str
    status: str | None
    reason: str | None


# -- the gate's side ----------------------------------------------------------------------------
def open_gate(folder: Path, api: Api, world: World, index: int) -> Gate:
    enrolment = world.org.client.post("/v1/devices", json={"name": f"G{index}"}).json()
    gate = Gate(folder, clock=Clock())
    gate.pair(api.url, enrolment["enrollment_code"], f"G{index}")
    cp = world.checkpoints[0]
    gate.configure(world.event_id, cp["id"], "out" if cp["direction"] == "out" else "in", "Op")
    assert gate.sync_now(), gate.status().last_error
    return gate


def put_on(gate: Gate, event_id: str, checkpoint_id: str, direction: str) -> None:
    config = gate.config
    if config is None or (config.checkpoint_id, config.direction) != (checkpoint_id, direction):
        gate.configure(event_id, checkpoint_id, direction, "Op")


def local_occupancy(gate: Gate, zone_id: str) -> int:
    """The zone's occupancy as the gate counts it: the last pull plus its own readings since."""
    pulled = gate.store.one("SELECT occupancy FROM zones WHERE id = ?", (zone_id,))
    local = gate.store.one("SELECT delta FROM zone_deltas WHERE zone_id = ?", (zone_id,))
    return (int(pulled[0]) if pulled else 0) + (int(local[0]) if local else 0)


def uploaded(gate: Gate) -> dict[str, Uploaded]:
    return {
        r["id"]: Uploaded(r["state"], r["server_status"], r["server_reason"])
        for r in gate.store.query("SELECT id, state, server_status, server_reason FROM readings")
    }


def _presence(history: History) -> Presence:
    zones = {
        key: (z.inside, z.entries) for key, z in history.zones.items() if z.inside or z.entries
    }
    entries = {cp: n for cp, n in history.checkpoint_entries.items() if n}
    return {"zones": zones, "checkpoint_entries": entries}


def gate_presence(gate: Gate, attendee_id: str) -> Presence:
    row = gate.store.one("SELECT * FROM attendees WHERE id = ?", (attendee_id,))
    return _presence(gate.pipeline.history(row, attendee_id))


# -- the server's side --------------------------------------------------------------------------
def server_presence(api: Api, attendee_id: str) -> Presence:
    with api.app.state.engine.connect() as conn:
        state = conn.execute(
            text("SELECT state FROM attendees WHERE id = :id"), {"id": attendee_id}
        ).scalar_one()
    if isinstance(state, str):
        state = json.loads(state)
    return _presence(history_from_state(state or {}))


def server_occupancy(org: Org, event_id: str) -> dict[str, int]:
    zones = org.client.get(f"/v1/events/{event_id}/zones", params={"limit": 100}).json()["data"]
    return {z["id"]: int(z["occupancy"]) for z in zones}


def open_conflicts(org: Org, event_id: str) -> list[dict[str, Any]]:
    page = org.client.get(
        f"/v1/events/{event_id}/conflicts", params={"status": "open", "limit": 100}
    ).json()
    return list(page["data"])


def conflicting_readings(org: Org, event_id: str) -> set[str]:
    """The reading each open conflict is about (the admission that should not have been)."""
    return {c["scan_ids"][0] for c in open_conflicts(org, event_id) if c["scan_ids"]}


# -- the oracle ---------------------------------------------------------------------------------
def _at(world: World, seconds: float | None) -> datetime | None:
    return None if seconds is None else world.t0 + timedelta(seconds=seconds)


def _policy(world: World, sc: Scenario, index: int) -> CheckpointPolicy:
    spec, row = sc.checkpoints[index], world.checkpoints[index]
    return CheckpointPolicy(
        id=row["id"],
        event_id=world.event_id,
        zone_id=world.zones[spec.zone] if spec.zone is not None else None,
        direction=CheckpointDirection(spec.direction),
        allowed_ticket_types=frozenset(spec.allowed),
        required_tags=frozenset(spec.required),
        excluded_tags=frozenset(spec.excluded),
        max_entries=spec.max_entries,
        allow_reentry=spec.allow_reentry,
        anti_passback=spec.anti_passback,
        open_from=_at(world, spec.open_window[0]),
        open_until=_at(world, spec.open_window[1]),
    )


def _ticket(world: World, sc: Scenario, who: int) -> Ticket:
    spec = sc.attendees[who]
    type_from, type_until = sc.type_windows[("general", "vip").index(spec.ticket_type)]
    starts = [t for t in (_at(world, spec.validity[0]), _at(world, type_from)) if t is not None]
    ends = [t for t in (_at(world, spec.validity[1]), _at(world, type_until)) if t is not None]
    return Ticket(
        attendee_id=world.people[who]["id"],
        event_id=world.event_id,
        ticket_type=spec.ticket_type,
        status=AttendeeStatus(spec.status),
        tags=frozenset(spec.tags),
        valid_from=max(starts, default=None),
        valid_until=min(ends, default=None),
    )


def expected_conflicts(world: World, sc: Scenario, taken: list[Taken]) -> set[str]:
    """Every admission a gate made that the rules deny on the union of all gates' readings of
    that attendee before it, in the order the readings happened."""
    expected: set[str] = set()
    for who in range(len(sc.attendees)):
        ticket = _ticket(world, sc, who)
        mine = sorted(
            (t for t in taken if t.spec.who == who and t.verdict.id is not None),
            key=lambda t: t.at,
        )
        history = History()
        for t in mine:
            policy = _policy(world, sc, t.spec.checkpoint)
            direction = Direction(t.verdict.direction)
            verdict = decide(ScanInput(policy, t.at, direction, ticket=ticket, history=history))
            admitted = t.verdict.status == Status.ACCEPTED
            if admitted and not verdict.accepted and verdict.reason is not Reason.DUPLICATE_SCAN:
                expected.add(t.verdict.id)
            recorded = Status.ACCEPTED if admitted else Status.DENIED
            history = history.apply(Reading(policy.id, policy.zone_id, direction, recorded, t.at))
    return expected
