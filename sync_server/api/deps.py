"""Route dependencies that read like prose: `SessionDep`, `Principal` with its scopes, `EventDep`.

Ownership is checked here once: a resource of another organization answers 404 exactly like a
missing one. A device whose wipe was ordered answers 410 `device_wiped` on every route but the
one that confirms the wipe (`WipingDevice`), which alone also takes a revoked device's token.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from shared.sync import PENDING_HEADER
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import ApiKey, Device, Event
from sync_server.models.core import Scope
from sync_server.security import hash_token, token_kind
from sync_server.services.rate_limits import RateLimiter
from sync_server.settings import Settings

__all__ = [
    "Admin",
    "EventDep",
    "EventWriteDep",
    "Principal",
    "RateLimiter",
    "Reader",
    "ScanWriter",
    "Scanner",
    "SessionDep",
    "SettingsDep",
    "WebhookAdmin",
    "WipingDevice",
    "Writer",
    "caller_organization",
    "owned",
    "owned_event",
    "require",
]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_API_KEYS: Table = ApiKey.__table__  # type: ignore[assignment]
_DEVICES: Table = Device.__table__  # type: ignore[assignment]
_LOOKUPS = {  # built once: statement construction costs more than the query
    "api_key": (
        sa_select(
            _API_KEYS.c.id,
            _API_KEYS.c.organization_id,
            _API_KEYS.c.revoked_at,
            _API_KEYS.c.last_used_at,
            _API_KEYS.c.scopes,
        ).where(_API_KEYS.c.key_hash == bindparam("digest")),
        update(_API_KEYS)
        .where(_API_KEYS.c.id == bindparam("b_id"))
        .values(last_used_at=bindparam("b_now")),
    ),
    "device": (
        sa_select(
            _DEVICES.c.id,
            _DEVICES.c.organization_id,
            _DEVICES.c.revoked_at,
            _DEVICES.c.last_seen_at,
            _DEVICES.c.wipe_requested_at,
            _DEVICES.c.wipe_confirmed_at,
            _DEVICES.c.pending_uploads,
        ).where(_DEVICES.c.token_hash == bindparam("digest")),
        update(_DEVICES)
        .where(_DEVICES.c.id == bindparam("b_id"))
        .values(last_seen_at=bindparam("b_now")),
    ),
}
_TOUCH_PENDING = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("b_id"))
    .values(
        last_seen_at=bindparam("b_now"),
        pending_uploads=bindparam("b_pending"),
        pending_reported_at=bindparam("b_now"),
    )
)
LAST_USED_GRANULARITY = timedelta(seconds=60)
MAX_PENDING = 10_000_000  # as shared.sync.WipeReport.pending
_PENDING_VALUE = re.compile(r"[0-9]{1,8}")


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; reads skip SQLite's up-front write lock. Services commit."""
    engine: Engine = request.app.state.engine
    if request.method in READ_METHODS:
        engine = request.app.state.read_engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key or an enrolled device, always inside one organization."""

    organization_id: str
    subject_id: str
    kind: str  # "api_key" | "device"
    scopes: frozenset[str]

    def allows(self, scope: Scope) -> bool:
        if self.kind == "device":
            return scope is Scope.SCAN
        return Scope.ADMIN in self.scopes or scope in self.scopes


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def _invalid() -> ApiError:
    return ApiError(
        401,
        "invalid_api_key",
        "Missing, unknown or revoked API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _wiped() -> ApiError:
    return ApiError(
        410,
        "device_wiped",
        "This device was wiped by the organizer: erase its data and key, push nothing more, "
        "then confirm with POST /v1/sync/wiped",
    )


def reported_pending(value: str | None) -> int | None:
    """The `X-Doorcheck-Pending` count a device sent, or None when absent or not a count
    (anything but 0..10,000,000 in plain digits is ignored, never an error)."""
    if value is None:
        return None
    value = value.strip()
    if not _PENDING_VALUE.fullmatch(value):
        return None
    count = int(value)
    return count if count <= MAX_PENDING else None


def _touch(request: Request, kind: str, row: Any) -> None:
    """Record the caller's use: at most once a minute, except that a device's changed pending
    count is stored at once (an unchanged one rides along with the once-a-minute write)."""
    now = utcnow()
    last = row[3]  # last_used_at or last_seen_at
    stale = last is None or now - last > LAST_USED_GRANULARITY
    pending = reported_pending(request.headers.get(PENDING_HEADER)) if kind == "device" else None
    changed = pending is not None and pending != row.pending_uploads
    if not (stale or changed):
        return
    statement = _TOUCH_PENDING if pending is not None else _LOOKUPS[kind][1]
    values = {"b_id": row.id, "b_now": now, "b_pending": pending}
    with request.app.state.engine.begin() as conn:
        conn.execute(statement, values)


def _authenticate(request: Request, *, wiping: bool = False) -> Principal:
    """Look the token up in a short read of its own (the request's session has not begun yet,
    so recording last use cannot wait on the request's own SQLite write lock). With `wiping`
    (the route a device confirms its wipe on) a device token is taken even when revoked or
    ordered to wipe."""
    token = _bearer(request)
    kind = token_kind(token) if token else None
    if token is None or kind is None:
        raise _invalid()
    row = _token_row(request, kind, token)
    if row is None:
        raise _invalid()
    if kind == "device" and wiping:
        return Principal(row.organization_id, row.id, kind, frozenset({Scope.SCAN}))
    if kind == "device" and row.wipe_requested_at is not None and row.wipe_confirmed_at is None:
        _touch(request, kind, row)  # when the device heard the order, and what it still queued
        raise _wiped()
    if row.revoked_at is not None:
        raise _invalid()
    scopes = frozenset(row.scopes) if kind == "api_key" else frozenset({Scope.SCAN})
    _touch(request, kind, row)
    return Principal(row.organization_id, row.id, kind, scopes)


def caller_organization(request: Request) -> str | None:
    """The organization of the request's token when it is a known, unrevoked one; None otherwise
    (this is not authentication: the route still authenticates and checks scopes)."""
    token = _bearer(request)
    kind = token_kind(token) if token else None
    if token is None or kind is None:
        return None
    row = _token_row(request, kind, token)
    if row is None or row.revoked_at is not None:
        return None
    return str(row.organization_id)


def _token_row(request: Request, kind: str, token: str) -> Any:
    """The token's row, read once per request (the `Idempotency-Key` layer reads it before the
    route authenticates: the route takes the same row)."""
    state = request.scope.setdefault("state", {})
    seen = state.get(_TOKEN_ROW)
    if seen is not None and seen[0] == token:
        return seen[1]
    digest = hash_token(request.app.state.secret, token)
    with request.app.state.read_engine.connect() as conn:
        row = conn.execute(_LOOKUPS[kind][0], {"digest": digest}).first()
    state[_TOKEN_ROW] = (token, row)
    return row


_TOKEN_ROW = "doorcheck.token_row"


def _rate_limited(request: Request, response: Response, principal: Principal) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    limit, remaining, reset = limiter.hit(principal.subject_id)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(reset),
    }
    if remaining < 0:
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests; slow down",
            headers={**headers, "Retry-After": str(reset)},
        )
    response.headers.update(headers)


def require(*scopes: Scope) -> Callable[..., Principal]:
    """A dependency that authenticates, rate-limits and checks for any of `scopes`."""

    def dependency(request: Request, response: Response) -> Principal:
        principal = _authenticate(request)
        _rate_limited(request, response, principal)
        if not any(principal.allows(scope) for scope in scopes):
            wanted = " or ".join(repr(s.value) for s in scopes)
            raise ApiError(403, "insufficient_scope", f"This key lacks the {wanted} scope")
        return principal

    return dependency


def wiping_device(request: Request, response: Response) -> Principal:
    """The device confirming its wipe: its token is taken even when revoked or ordered to
    wipe (a revoked gate erases itself and says so); an API key answers 403."""
    principal = _authenticate(request, wiping=True)
    _rate_limited(request, response, principal)
    if principal.kind != "device":
        raise ApiError(403, "insufficient_scope", "Only a device token can confirm a wipe")
    return principal


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Writer = Annotated[Principal, Depends(require(Scope.WRITE))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
Scanner = Annotated[Principal, Depends(require(Scope.SCAN))]
ScanWriter = Annotated[Principal, Depends(require(Scope.WRITE, Scope.SCAN))]
WebhookAdmin = Annotated[Principal, Depends(require(Scope.WEBHOOKS))]
WipingDevice = Annotated[Principal, Depends(wiping_device)]


M = TypeVar("M", bound=SQLModel)


def owned(session: Session, principal: Principal, model: type[M], row_id: str, what: str) -> M:
    """The row of `model` with this id if it belongs to the caller's organization; otherwise 404,
    the same answer for a missing id and another organization's."""
    row = session.get(model, row_id) if len(row_id) <= 40 else None
    if row is None or getattr(row, "organization_id", None) != principal.organization_id:
        raise not_found(what)
    return row


def owned_event(session: Session, principal: Principal, event_id: str) -> Event:
    return owned(session, principal, Event, event_id, "event")


def event_reader(event_id: str, principal: Reader, session: SessionDep) -> Event:
    return owned_event(session, principal, event_id)


def event_writer(event_id: str, principal: Writer, session: SessionDep) -> Event:
    return owned_event(session, principal, event_id)


EventDep = Annotated[Event, Depends(event_reader)]
EventWriteDep = Annotated[Event, Depends(event_writer)]
