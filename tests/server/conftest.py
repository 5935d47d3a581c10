"""A migrated database, the app on a real uvicorn, and clients holding real API keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
        return httpx.Client(
            base_url=str(self.client.base_url),
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        )


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
        client = httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        return Org(org.id, key, client)

    def raw_key(self, org_id: str, scopes: list[str]) -> str:
        with session_scope(self.app.state.engine) as session:
            _, key = create_api_key(
                session,
                organization_id=org_id,
                name="raw",
                scopes=scopes,
                secret=self.app.state.secret,
            )
        return key


def make_settings(db_url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(db_url=db_url, data_dir=data_dir, secret_key="test-secret-" + "x" * 32, **extra)


@contextmanager
def live_api(db_url: str, tmp_path: Path, *, migrate: bool = True, **extra: Any) -> Iterator[Api]:
    """The app with `make_settings(db_url, tmp_path, **extra)`, migrated (unless `migrate` is
    False: a database that cannot be), on a real uvicorn."""
    settings = make_settings(db_url, tmp_path, **extra)
    app = create_app(settings)
    if migrate:
        upgrade(app.state.engine)
    live = serve(app)
    try:
        yield Api(app, live, settings)
    finally:
        live.stop()
        app.state.engine.dispose()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    with live_api(db_url, tmp_path) as api:
        yield api


@pytest.fixture
def org(api: Api) -> Iterator[Org]:
    org = api.new_org("Acme Events")
    yield org
    org.client.close()


def setup_event(org: Org, *, zone_capacity: int | None = None) -> dict[str, Any]:
    """An event with a general and a VIP ticket type, a zone and an entry and exit checkpoint."""
    c = org.client
    event = c.post(
        "/v1/events", json={"name": "Fest", "slug": "fest", "timezone": "Europe/Madrid"}
    ).json()
    eid = event["id"]
    general = c.post(
        f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"}
    ).json()
    vip = c.post(
        f"/v1/events/{eid}/ticket-types", json={"name": "VIP", "slug": "vip", "is_vip": True}
    ).json()
    zone = c.post(
        f"/v1/events/{eid}/zones", json={"name": "Main hall", "capacity": zone_capacity}
    ).json()
    gate_a = c.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Gate A", "zone_id": zone["id"], "direction": "both"},
    ).json()
    gate_b = c.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Gate B", "zone_id": zone["id"], "direction": "in"},
    ).json()
    return {
        "event": event,
        "general": general,
        "vip": vip,
        "zone": zone,
        "gate_a": gate_a,
        "gate_b": gate_b,
        "id": eid,
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`response` is the error envelope with `status` and `code`; answers its `error` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert response.headers["cache-control"] == "private, no-store"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert "Traceback" not in response.text
    return dict(error)


def add_attendee(org: Org, event_id: str, **fields: Any) -> dict[str, Any]:
    """Create one attendee (a general ticket unless `ticket_type` says otherwise)."""
    body = {"first_name": "Ana", "last_name": "Ruiz", "ticket_type": "general", **fields}
    response = org.client.post(f"/v1/events/{event_id}/attendees", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def scan(client: httpx.Client, checkpoint_id: str, code: str, **extra: Any) -> dict[str, Any]:
    """One online scan that must answer 200; answers the scan result."""
    response = client.post(f"/v1/checkpoints/{checkpoint_id}/scans", json={"code": code, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def api_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """Every (method, path, operation id) the app serves from `sync_server` code, HEAD aside;
    flattens included routers (newer FastAPI keeps them lazily in `app.routes`)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: `app.routes` is already flat
        routes: Any = app.routes
    else:
        routes = iter_route_contexts(app.routes)
    found = []
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None or not endpoint.__module__.startswith("sync_server"):
            continue
        if not getattr(route, "include_in_schema", True):  # /docs and /redoc: pages, not API
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, str(route.path), str(route.operation_id or route.name)))
    return found


@dataclass
class Receiver:
    """A tiny HTTP receiver: records every request; `answer` picks each status code."""

    answer: Callable[[int], int] = lambda n: 204
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests.append({"headers": headers, "body": body})
            n = len(self.requests)
        return self.answer(n)  # outside the lock: an answer may take its time

    def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.requests) >= count, f"{len(self.requests)} of {count} arrived"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # 3 dispatchers x 8 threads connect at once
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/in?x=1"
    yield state
    server.shutdown()
    server.server_close()
