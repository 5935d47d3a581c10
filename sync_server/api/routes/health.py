"""Liveness and readiness probes. `/healthz` answers on the event loop and touches nothing, so
it answers at once whatever the database is doing; `/readyz` asks the database on a thread of
its own (never queued behind requests waiting for the database) and gives up after a bound.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_server.errors import unavailable

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
