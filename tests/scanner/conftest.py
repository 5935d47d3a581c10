"""A real server on loopback with an event, attendees and an enrolment code, and gates paired
with it in their own data folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner_app.gate import Gate
from tests.server.conftest import Api, Org, add_attendee, api, org, setup_event

__all__ = ["Clock", "Door", "api", "org"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The scanner suites run their server on SQLite (PostgreSQL is covered by the server's)."""
    return f"sqlite:///{tmp_path / 'server.db'}"


@dataclass
class Door:
    """The organizer's side of a scanner test: the event, its people and enrolment codes."""

    api: Api
    org: Org
    event: dict[str, Any]
    people: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    def enrolment(self, name: str = "Gate") -> dict[str, Any]:
        response = self.org.client.post("/v1/devices", json={"name": name})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def server_scans(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self.org.client.get(f"/v1/events/{self.event_id}/scans", params=params).json()
            out.extend(page["data"])
            if not page["has_more"]:
                return out
            cursor = page["next_cursor"]


class Clock:
    """A hand-moved clock for the gate, so debounce windows and re-entries are exact."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def door(api: Api, org: Org) -> Door:
    event = setup_event(org, zone_capacity=None)
    people = [
        add_attendee(org, event["id"], first_name="Ana", last_name="Ruiz", email="ana@example.com"),
        add_attendee(
            org,
            event["id"],
            first_name="Bo",
            last_name="Núñez",
            email="bo@example.com",
            ticket_type="vip",
        ),
        add_attendee(
            org, event["id"], first_name="Cy", last_name="Lee", email="cy@example.com", code="CY-1"
        ),
    ]
    return Door(api, org, event, people)


@pytest.fixture
def make_gate(tmp_path: Path, door: Door) -> Iterator[Callable[..., Gate]]:
    """Open a gate in its own folder, paired with the door's server and configured on Gate A."""
    gates: list[Gate] = []

    def make(
        name: str = "gate1",
        *,
        checkpoint: str = "gate_a",
        direction: str = "in",
        clock: Callable[[], datetime] | None = None,
    ) -> Gate:
        gate = Gate(tmp_path / name, clock=clock) if clock else Gate(tmp_path / name)
        if not gate.paired:
            gate.pair(door.url, door.enrolment(name)["enrollment_code"], name)
        gate.configure(door.event_id, door.event[checkpoint]["id"], direction, "Op")
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()
