"""Pure ASGI middleware: request body limits (413), NUL characters in URLs (422) and
`Cache-Control: private, no-store`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_server.errors import error_body

__all__ = ["BodyLimit", "NoNulInUrl", "NoStore", "send_json"]


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer with a JSON body from plain ASGI (the envelope, or anything else)."""
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"cache-control", b"private, no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    # the rest of the body is not read: the connection cannot be reused
    await send_json(send, status, error_body(code, message), ((b"connection", b"close"),))


async def _send_413(send: Send, limit: int) -> None:
    await _send_error(
        send, 413, "payload_too_large", f"The request body is larger than {limit} bytes"
    )


class BodyLimit:
    """Refuse bodies over `limit` bytes (`import_limit` on import paths), declared or streamed."""

    def __init__(self, app: ASGIApp, *, limit: int, import_limit: int) -> None:
        self.app, self.limit, self.import_limit = app, limit, import_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.import_limit if scope["path"].endswith("/import") else self.limit
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _send_413(send, limit)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI re-raises an HTTPException from the body read; the error handler
                    # turns it into the envelope.
                    raise HTTPException(413, f"The request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


class NoNulInUrl:
    """No id, filter or search term holds a NUL character, and PostgreSQL cannot even compare
    text with one: a URL carrying one is refused before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"]
            or b"%00" in scope["query_string"]
            or b"\x00" in scope["query_string"]
        ):
            await _send_error(send, 422, "validation_error", "The URL contains a NUL character")
            return
        await self.app(scope, receive, send)


class NoStore:
    """API responses must never be cached by a proxy or browser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"cache-control"]
                headers.append((b"cache-control", b"private, no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_header)
