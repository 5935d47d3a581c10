"""`Idempotency-Key` on authenticated POSTs (SPEC section 13), as pure ASGI middleware: the same
key with the same request within 24 h answers the first answer again (`Idempotent-Replayed:
true`); with another request, 422 `idempotency_key_reused`; while the first is still being
answered, 409. Keys are scoped to the caller's organization and kept in the database
(`services.idempotency`), so every worker and server agrees.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_server.api.deps import caller_organization
from sync_server.api.middleware import send_json
from sync_server.db import utcnow
from sync_server.errors import error_body
from sync_server.services import idempotency as store

__all__ = ["HEADER", "REPLAYED_HEADER", "Idempotency"]

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_NAME = HEADER.lower().encode()
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: a UUID, a ULID, a form's own id
# `/v1/sync/push` is idempotent by item id already; its body may be large and always differs.
_EXEMPT = ("/v1/sync/push",)
# answers not kept: the same request may succeed when tried again
_NOT_KEPT = frozenset({401, 403, 408, 429})
MAX_KEPT_BODY = 4 * 1024 * 1024


def _invalid_key(message: str) -> dict[str, Any]:
    detail = {"field": HEADER, "code": "invalid", "message": message}
    return error_body("validation_error", message, [detail])


def request_hash(scope: Scope, body: bytes) -> str:
    """What makes two requests the same: method, path, query and body."""
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\x00")
    digest.update(body)
    return digest.hexdigest()


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == _NAME]
        if not values:
            await self.app(scope, receive, send)
            return
        if len(values) > 1:
            await send_json(send, 422, _invalid_key(f"Send one {HEADER} header, not several"))
            return
        key = values[0].decode("latin-1").strip()
        if not _KEY.fullmatch(key):
            await send_json(
                send, 422, _invalid_key(f"{HEADER} is 1 to 255 visible ASCII characters")
            )
            return
        request = Request(scope)
        org = await run_in_threadpool(caller_organization, request)
        if org is None:  # the route answers 401 itself
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        engine = scope["app"].state.engine
        claim = await run_in_threadpool(
            store.begin, engine, org, key, request_hash(scope, body), now=utcnow()
        )
        if isinstance(claim, store.Reused):
            message = f"This {HEADER} was used for another request within 24 hours"
            await send_json(send, 422, error_body("idempotency_key_reused", message))
        elif isinstance(claim, store.Busy):
            message = f"A request with this {HEADER} is still being answered: retry shortly"
            await send_json(send, 409, error_body("conflict", message), ((b"retry-after", b"1"),))
        elif isinstance(claim, store.Replay):
            await _replay(send, claim)
        else:
            await self._answer(scope, body, send, org, key)

    async def _answer(self, scope: Scope, body: bytes, send: Send, org: str, key: str) -> None:
        engine = scope["app"].state.engine
        status, content_type, chunks, size = 0, None, [], 0
        delivered, settled = False, False

        async def replay_receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def settle() -> None:
            nonlocal settled
            settled = True
            if status in _NOT_KEPT or status >= 500 or size > MAX_KEPT_BODY:
                await run_in_threadpool(store.abandon, engine, org, key)
                return
            kept = b"".join(chunks)
            await run_in_threadpool(
                lambda: store.finish(
                    engine, org, key, status=status, content_type=content_type, body=kept
                )
            )

        async def capture(message: Message) -> None:
            nonlocal status, content_type, size
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_KEPT_BODY:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    held.append(message)
                    return
            await send(message)

        # The last part of the answer is held until the route is done (its session closed and
        # SQLite's write lock released) and the answer is kept: a client that retries the
        # moment it has the answer finds it kept.
        held: list[Message] = []
        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            if not settled:
                await run_in_threadpool(store.abandon, engine, org, key)
            raise
        if held:
            await settle()
            await send(held[0])
        elif not settled:
            await run_in_threadpool(store.abandon, engine, org, key)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


async def _replay(send: Send, claim: store.Replay) -> None:
    headers = [
        (b"content-length", str(len(claim.body)).encode()),
        (b"cache-control", b"private, no-store"),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    if claim.content_type:
        headers.append((b"content-type", claim.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": claim.status, "headers": headers})
    await send({"type": "http.response.body", "body": claim.body})
