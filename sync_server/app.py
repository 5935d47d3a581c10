"""`create_app(settings)`: the FastAPI application with its engine, error envelope, middleware and
routers wired in one place.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from sync_server import __version__
from sync_server.api.guards import CatchAll, WriterGate
from sync_server.api.idempotency import Idempotency
from sync_server.api.middleware import BodyLimit, NoNulInUrl, NoStore
from sync_server.api.observe import Observe
from sync_server.api.openapi import serve_docs
from sync_server.api.routes import (
    api_keys,
    attendees,
    children,
    conflicts,
    devices,
    events,
    exports,
    health,
    imports,
    scans,
    sync,
    webhook_log,
    webhooks,
)
from sync_server.api.wire import install_wire_schemas
from sync_server.db import BUSY_TIMEOUT_MS, Checkpointer, is_sqlite, make_engine
from sync_server.errors import install_error_handlers
from sync_server.security import SecretBox
from sync_server.services.rate_limits import RateLimiter, shared_windows
from sync_server.settings import Settings, get_settings

__all__ = ["create_app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """SQLite's WAL is checkpointed from a thread of its own (no request's commit does it)."""
    checkpointer = Checkpointer(app.state.engine)
    checkpointer.start()
    try:
        async with _dispatching(app):
            yield
    finally:
        checkpointer.stop()


@asynccontextmanager
async def _dispatching(app: FastAPI) -> AsyncIterator[None]:
    """The embedded webhook dispatcher runs beside the API unless `webhook_embedded` is off."""
    settings: Settings = app.state.settings
    if not settings.webhook_embedded:
        yield
        return
    from sync_server.webhooks.dispatch import Dispatcher

    dispatcher = Dispatcher(app.state.engine, settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=dispatcher.run_forever, args=(stop,), name="webhook-dispatcher", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)
        dispatcher.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        docs_url=None,  # served by serve_docs, from local assets
        redoc_url=None,
        title="doorcheck",
        version=__version__,
        description="Offline-first door check-in: organizer API, device sync and webhooks.",
        generate_unique_id_function=lambda route: (
            route.operation_id or route.name if isinstance(route, APIRoute) else route.name
        ),
    )
    engine = make_engine(settings.db_url, pool_size=settings.db_pool_size, checkpoints=False)
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = engine.execution_options(sqlite_immediate=False)
    # A pull page reads the event's sequence and its rows in one snapshot: SQLite's read
    # transaction does it; PostgreSQL needs REPEATABLE READ (READ COMMITTED snapshots a statement).
    app.state.snapshot_engine = (
        app.state.read_engine
        if is_sqlite(engine)
        else engine.execution_options(isolation_level="REPEATABLE READ")
    )
    app.state.secret = settings.secret()
    app.state.box = SecretBox(app.state.secret)
    # counted on Redis or in the database, so every worker and server shares one limit
    windows = shared_windows(engine, settings.redis_url)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, windows)
    # per client address: enrolment codes are guessable
    app.state.enroll_limiter = RateLimiter(30, windows)
    install_error_handlers(app)
    # Requests that write wait for a place here, on the event loop, not holding a pool thread or
    # a database connection: SQLite takes one writer at a time; on PostgreSQL writers may wait
    # on a lock, and reads keep four of the pool's connections.
    writers = 8 if is_sqlite(engine) else max(1, 2 * settings.db_pool_size - 4)
    app.add_middleware(Idempotency)  # inside the writer gate: it writes
    app.add_middleware(WriterGate, places=writers, wait_s=BUSY_TIMEOUT_MS / 1000)
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, import_limit=settings.max_import_bytes
    )
    app.add_middleware(NoNulInUrl)
    app.add_middleware(NoStore)
    app.add_middleware(CatchAll)  # a failure still answers, connection kept
    # outermost: the request id and the metrics see every answer, a 500 included
    app.add_middleware(Observe, access_log=settings.access_log)
    # Routers are matched in this order: the door's hot paths (scans, sync) come first.
    for router in (
        scans.router,
        sync.router,
        health.router,
        api_keys.router,
        events.router,
        children.ticket_types,
        children.zones,
        children.checkpoints,
        exports.router,  # before attendees: "export" is not an attendee id
        attendees.router,
        imports.router,
        devices.router,
        conflicts.router,
        webhook_log.router,  # before webhooks: /messages is not an endpoint id
        webhooks.router,
    ):
        app.include_router(router)
    install_wire_schemas(app)
    serve_docs(app)
    return app
