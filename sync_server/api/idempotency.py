"""`Idempotency-Key` on authenticated POSTs (SPEC section 13), as pure ASGI middleware: the same
key with the same request within 24 h answers the first answer again (`Idempotent-Replayed:
true`); with another request, 422 `idempotency_key_reused`; while the first is still being
answered, 409. Keys are scoped to the caller's organization and kept in the database
(`services.idempotency`), so every worker and server agrees.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_server.api.deps import caller_organization
from sync_server.api.middleware import send_json
from sync_server.db import utcnow
from sync_server.errors import ApiError, error_body
from sync_server.services import idempotency as store

__all__ = [
    "HEADER",
    "REPLAYED_HEADER",
    "Idempotency",
    "Keyed",
    "claim_inline",
    "keep_inline",
    "keyed_inline",
]

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
        body = await _read_body(receive)
        inline = _INLINE.fullmatch(scope["path"]) is not None
        keyed = Keyed(key, request_hash(scope, body), inline=inline)
        if inline:  # the route takes and keeps the key itself
            scope.setdefault("state", {})[_STATE] = keyed
            await self._answer(scope, body, send, keyed)
            return
        # one trip to a pool thread: the caller's organization (its token's row, which the
        # route then takes as it is) and the key taken, or what it holds
        found = await run_in_threadpool(_claim, Request(scope), keyed)
        if found is None:  # the route answers 401 itself
            await self.app(scope, _replayed(body), send)
            return
        if isinstance(found, store.Reused):
            await send_json(send, 422, error_body(*_REUSED))
        elif isinstance(found, store.Busy):
            await send_json(send, 409, error_body(*_BUSY), ((b"retry-after", b"1"),))
        elif isinstance(found, store.Replay):
            await _replay(send, found)
        else:
            await self._answer(scope, body, send, keyed)

    async def _answer(self, scope: Scope, body: bytes, send: Send, keyed: Keyed) -> None:
        engine = scope["app"].state.engine
        status, content_type, size = 0, None, 0
        chunks: list[bytes] = []
        settled = False

        def claimed() -> bool:  # taken and not kept yet (a route answering inline keeps it)
            return keyed.org is not None and not keyed.finished

        async def abandon() -> None:
            # a key taken inline went away with its transaction's rollback
            if keyed.org is not None and claimed() and not keyed.inline:
                await run_in_threadpool(store.abandon, engine, keyed.org, keyed.key)

        async def settle() -> None:
            nonlocal settled
            settled = True
            org = keyed.org
            if org is None or not claimed():
                return
            if status in _NOT_KEPT or status >= 500 or size > MAX_KEPT_BODY:
                await abandon()
                return
            answer = store.Replay(status, content_type, b"".join(chunks))
            await run_in_threadpool(_keep, engine, keyed, org, answer)

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
            await self.app(scope, _replayed(body), capture)
        except BaseException:
            if not settled:
                await abandon()
            raise
        if held:
            await settle()
            await send(held[0])
        elif not settled:
            await abandon()


@dataclass(slots=True)
class Keyed:
    """A request sent with an `Idempotency-Key`: `org` is set once the key is taken for it,
    `finished` once its answer is kept."""

    key: str
    digest: str
    org: str | None = None
    finished: bool = False
    inline: bool = False  # taken in the route's transaction: a rollback took the record too


_STATE = "doorcheck.idempotency"
# Routes that take and keep the key in their own thread (`claim_inline`, `keep_inline`): the
# online scan, the door's hot path, makes no extra trip to the thread pool for it.
_INLINE = re.compile(r"/v1/checkpoints/[^/]{1,64}/scans")
_REUSED = ("idempotency_key_reused", f"This {HEADER} was used for another request within 24 hours")
_BUSY = ("conflict", f"A request with this {HEADER} is still being answered: retry shortly")


def _claim(request: Request, keyed: Keyed) -> store.Claim | None:
    org = caller_organization(request)
    if org is None:
        return None
    claim = store.begin(request.app.state.engine, org, keyed.key, keyed.digest, now=utcnow())
    if isinstance(claim, store.Started):
        keyed.org = org
    return claim


def claim_inline(request: Request, org: str, session: Session) -> Response | None:
    """In the route's own transaction, once the caller is known: take the request's key (None:
    answer it, `keep_inline` the answer, commit), or the answer to give instead (a replay; 422
    or 409 raised). Should the transaction roll back, the middleware keeps the answer given."""
    keyed: Keyed | None = request.scope.get("state", {}).get(_STATE)
    if keyed is None:
        return None
    conn = session.connection()
    claim = store.take(conn, org, keyed.key, keyed.digest, now=utcnow()) or store.Busy()
    if isinstance(claim, store.Started):
        keyed.org = org
        return None
    if isinstance(claim, store.Reused):
        raise ApiError(422, *_REUSED)
    if isinstance(claim, store.Busy):
        raise ApiError(409, *_BUSY, headers={"Retry-After": "1"})
    headers = {"Cache-Control": "private, no-store", REPLAYED_HEADER: "true"}
    if claim.content_type:
        headers["Content-Type"] = claim.content_type
    return Response(claim.body, status_code=claim.status, headers=headers)


def keyed_inline(request: Request) -> bool:
    """Whether this request's key is taken by its route (`claim_inline`)."""
    return _STATE in request.scope.get("state", {})


def keep_inline(request: Request, conn: Connection, body: bytes) -> None:
    """Keep a successful JSON answer (200) under the key `claim_inline` took, in the same
    transaction (before its commit)."""
    keyed: Keyed | None = request.scope.get("state", {}).get(_STATE)
    if keyed is None or keyed.org is None:
        return
    store.keep(conn, keyed.org, keyed.key, status=200, content_type=_JSON, body=body)
    keyed.finished = True


_JSON = "application/json"


def _keep(engine: Engine, keyed: Keyed, org: str, answer: store.Replay) -> None:
    if keyed.inline:  # the route's transaction rolled back, and the key with it
        store.keep_unless_taken(engine, answer, org, keyed.key, keyed.digest, now=utcnow())
        return
    store.finish(
        engine,
        org,
        keyed.key,
        status=answer.status,
        content_type=answer.content_type,
        body=answer.body,
    )


def _replayed(body: bytes) -> Receive:
    """A `receive` that gives the body already read, then a disconnect."""
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


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
