"""The gate's HTTP goes through an injectable transport: here the server app is called in this
process (Starlette's test transport), no socket, no uvicorn, for tests where a socket adds
nothing. The end-to-end tests over real loopback HTTP stay in test_gate.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from scanner_app.gate import Gate
from sync_server.app import create_app
from sync_server.db import session_scope
from sync_server.migrate import upgrade
from sync_server.services.keys import create_organization
from tests.server.conftest import make_settings

SERVER = "http://testserver"


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'server.db'}", tmp_path))
    upgrade(app.state.engine)
    with session_scope(app.state.engine) as session:
        _, key = create_organization(session, name="Acme", secret=app.state.secret)
    client = TestClient(app, base_url=SERVER, headers={"Authorization": f"Bearer {key}"})
    yield client
    app.state.engine.dispose()


def test_a_gate_pairs_syncs_and_uploads_without_a_socket(admin: TestClient, tmp_path: Path) -> None:
    event = admin.post("/v1/events", json={"name": "Fest", "slug": "fest"}).json()
    eid = event["id"]
    admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
    cp = admin.post(f"/v1/events/{eid}/checkpoints", json={"name": "Door"}).json()
    ana = admin.post(
        f"/v1/events/{eid}/attendees",
        json={"first_name": "Ana", "last_name": "Ruiz", "ticket_type": "general"},
    ).json()
    code = admin.post("/v1/devices", json={"name": "Gate"}).json()["enrollment_code"]
    transport: httpx.BaseTransport = admin._transport  # the app, called in process
    gate = Gate(tmp_path / "gate", transport=transport)
    try:
        gate.pair(SERVER, code, "Gate")
        gate.configure(eid, cp["id"], "in", "Op")
        assert gate.sync_now()
        assert gate.status().attendees_cached == 1
        verdict = gate.submit(ana["qr"])
        assert verdict.accepted and verdict.attendee is not None
        assert gate.sync_now() and gate.status().pending == 0
        scans = admin.get(f"/v1/events/{eid}/scans").json()["data"]
        assert [(s["id"], s["status"], s["offline"]) for s in scans] == [
            (verdict.id, "accepted", True)
        ]
        conflicts = gate.conflicts(admin.headers["Authorization"].removeprefix("Bearer "))
        assert conflicts == []
    finally:
        gate.close()
