"""What several benchmarks share: the server in the benchmark's own process, on a real uvicorn
over loopback, with one organization and its admin key.

    with bench_server("sqlite:///x.db", Path("x")) as (live, key):
        httpx.get(f"{live.url}/v1/events", headers={"Authorization": f"Bearer {key}"})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from sync_server.app import create_app
from sync_server.db import session_scope
from sync_server.migrate import upgrade
from sync_server.services.keys import create_organization
from sync_server.settings import Settings
from tests.conftest import LiveServer, serve

__all__ = ["bench_server"]


@contextmanager
def bench_server(
    db_url: str, data_dir: Path, wrap: Callable[[FastAPI], Any] | None = None
) -> Iterator[tuple[LiveServer, str]]:
    """A migrated server (no rate limit) served on a free port; `wrap` may put an ASGI layer
    around it. Stopped and its engine disposed on the way out."""
    settings = Settings(
        db_url=db_url,
        data_dir=data_dir,
        secret_key="bench-" + "x" * 40,
        rate_limit_per_minute=10**9,
    )
    app = create_app(settings)
    upgrade(app.state.engine)
    live = serve(wrap(app) if wrap is not None else app)
    try:
        with session_scope(app.state.engine) as session:
            _, key = create_organization(session, name="bench", secret=app.state.secret)
        yield live, key
    finally:
        live.stop()
        app.state.engine.dispose()
