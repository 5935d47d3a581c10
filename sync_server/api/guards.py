"""What keeps the server answering under faults (SPEC section 10), as pure ASGI middleware:

- `CatchAll`: an exception no handler took becomes the 500 envelope here, inside the server's
  outermost layer, so the keep-alive connection stays usable (Starlette's own last resort
  re-raises after answering, and uvicorn then drops the connection without saying so);
- `WriterGate`: requests that write wait for a place here, on the event loop, instead of each
  holding a thread of the shared pool (and a database connection) while the database makes them
  wait (SQLite takes one writer at a time; on PostgreSQL a writer may wait on a lock); reads,
  probes and long-polls keep getting threads and connections. A request that cannot get a
  place within the bounded wait answers 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_server.api.middleware import send_json
from sync_server.errors import RETRY_AFTER_S, error_body

__all__ = ["CatchAll", "WriterGate"]

log = logging.getLogger("doorcheck.server")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for an answer: the connection cannot be trusted any more
                raise
            body = error_body("internal_error", "Something went wrong on our side")
            await send_json(send, 500, body)


class WriterGate:
    """`WriterGate(app, places=8, wait_s=5.0)`: at most `places` writing requests at once."""

    def __init__(self, app: ASGIApp, *, places: int = 8, wait_s: float = 5.0) -> None:
        self.app = app
        self.places = places
        self.wait_s = wait_s
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITES:
            await self.app(scope, receive, send)
            return
        if self._gate is None:  # created on the server's own event loop
            self._gate = asyncio.Semaphore(self.places)
        try:
            await asyncio.wait_for(self._gate.acquire(), self.wait_s)
        except TimeoutError:
            body = error_body("unavailable", "The database is busy: try again in a moment")
            await send_json(send, 503, body, ((b"retry-after", str(RETRY_AFTER_S).encode()),))
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._gate.release()
