"""Liveness and readiness probes, and `/metrics`. `/healthz` answers on the event loop and
touches nothing, so it answers at once whatever the database is doing; `/readyz` asks the
database on a thread of its own (never queued behind requests waiting for the database) and
gives up after a bound.
"""

from __future__ import annotations

import asyncio
import ipaddress
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_server.api.deps import require
from sync_server.errors import unavailable
from sync_server.metrics import CONTENT_TYPE, render
from sync_server.models.core import Scope
from sync_server.settings import Settings

router = APIRouter(tags=["health"])

READY_WAIT_S = 2.0
_PROBES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz")
async def readyz(request: Request) -> dict[str, str]:
    """The database answers (within 2 s)."""
    engine = request.app.state.read_engine

    def ask() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(_PROBES, ask), READY_WAIT_S)
    except (SQLAlchemyError, TimeoutError) as exc:
        raise unavailable("The database is not reachable") from exc
    return {"status": "ok", "database": request.app.state.engine.dialect.name}


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
def metrics(request: Request, response: Response) -> Response:
    """The Prometheus text format (SPEC section 13): open to loopback clients, to others with
    an admin key, or to anyone when `DOORCHECK_METRICS_PUBLIC` is true."""
    settings: Settings = request.app.state.settings
    client = request.client.host if request.client else ""
    if not (settings.metrics_public or _loopback(client)):
        require(Scope.ADMIN)(request, response)
    body = render(request.app.state.read_engine)
    return Response(body, media_type=CONTENT_TYPE)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
