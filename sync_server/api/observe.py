"""The server's outermost layer (pure ASGI): every answer carries `X-Request-Id` (the client's
when it is a sane one, else a new one), every request is counted for `/metrics` by its route
template and status, and with `access_log` one line per request is logged with its id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_server.logs import REQUEST_ID
from sync_server.metrics import observe_request

__all__ = ["HEADER", "Observe", "request_id"]

HEADER = "X-Request-Id"
_NAME = HEADER.lower().encode()
_SANE = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")  # a UUID, a ULID, a proxy's own id
access = logging.getLogger("doorcheck.access")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id when it is a sane one, else a new one."""
    for name, value in headers:
        if name == _NAME and _SANE.fullmatch(value.strip()):
            return value.strip().decode("ascii")
    return "req_" + uuid.uuid4().hex


class Observe:
    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app, self.access_log = app, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        token = REQUEST_ID.set(rid)
        header = (_NAME, rid.encode())
        status = 500
        start = time.perf_counter()

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None)
            observe_request(scope["method"], template, status, seconds)
            if self.access_log:
                _log(scope, template, status, seconds, rid)
            REQUEST_ID.reset(token)


def _log(scope: Scope, template: str | None, status: int, seconds: float, rid: str) -> None:
    client = scope.get("client")
    host = client[0] if client else None
    fields: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],  # not the query: a search term may be a name
        "route": template,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "client": host,
        "request_id": rid,
    }
    access.info(
        '%s "%s %s" %d %.1f ms',
        host or "-",
        scope["method"],
        scope["path"],
        status,
        seconds * 1000,
        extra=fields,
    )
