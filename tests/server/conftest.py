"""A migrated database, the app on a real uvicorn, and clients holding real API keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sync_server.app import create_app
from sync_server.db import session_scope
from sync_server.migrate import upgrade
from sync_server.services.keys import create_api_key, create_organization
from sync_server.settings import Settings
from tests.conftest import LiveServer, serve


@dataclass
class Org:
    id: str
    admin_key: str
    client: httpx.Client

    def key(self, *scopes: str) -> str:
        """A new API key of this organization with `scopes`."""
        response = self.client.post("/v1/api-keys", json={"name": "t", "scopes": list(scopes)})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    def as_key(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=str(self.client.base_url), timeout=30,
                            headers={"Authorization": f"Bearer {key}"})


@dataclass
class Api:
    app: FastAPI
    live: LiveServer
    settings: Settings

    @property
    def url(self) -> str:
        return self.live.url

    def new_org(self, name: str = "Org") -> Org:
        with session_scope(self.app.state.engine) as session:
            org, key = create_organization(session, name=name, secret=self.app.state.secret)
        client = httpx.Client(base_url=self.url, timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
        return Org(org.id, key, client)

    def raw_key(self, org_id: str, scopes: list[str]) -> str:
        with session_scope(self.app.state.engine) as session:
            _, key = create_api_key(session, organization_id=org_id, name="raw", scopes=scopes,
                                    secret=self.app.state.secret)
        return key


def make_settings(db_url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(db_url=db_url, data_dir=data_dir, secret_key="test-secret-" + "x" * 32, **extra)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(db_url, tmp_path)
    app = create_app(settings)
    upgrade(app.state.engine)
    live = serve(app)
    try:
        yield Api(app, live, settings)
    finally:
        live.stop()
        app.state.engine.dispose()


@pytest.fixture
def org(api: Api) -> Iterator[Org]:
    org = api.new_org("Acme Events")
    yield org
    org.client.close()


def setup_event(org: Org, *, zone_capacity: int | None = None) -> dict[str, Any]:
    """An event with a general and a VIP ticket type, a zone and an entry and exit checkpoint."""
    c = org.client
    event = c.post("/v1/events", json={"name": "Fest", "slug": "fest",
                                       "timezone": "Europe/Madrid"}).json()
    eid = event["id"]
    general = c.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"}).json()
    vip = c.post(f"/v1/events/{eid}/ticket-types",
                 json={"name": "VIP", "slug": "vip", "is_vip": True}).json()
    zone = c.post(f"/v1/events/{eid}/zones", json={"name": "Main hall",
                                                   "capacity": zone_capacity}).json()
    gate_a = c.post(f"/v1/events/{eid}/checkpoints",
                    json={"name": "Gate A", "zone_id": zone["id"], "direction": "both"}).json()
    gate_b = c.post(f"/v1/events/{eid}/checkpoints",
                    json={"name": "Gate B", "zone_id": zone["id"], "direction": "in"}).json()
    return {"event": event, "general": general, "vip": vip, "zone": zone,
            "gate_a": gate_a, "gate_b": gate_b, "id": eid}
