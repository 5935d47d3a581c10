"""Device sync (SPEC section 7): the events a device may scan, pulls by change cursor with
long-polling, idempotent batch pushes of offline readings and door registrations, and the
device's confirmation that it wiped itself."""

from __future__ import annotations

import asyncio
import gzip
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session

from shared.sync import (
    MAX_PULL_LIMIT,
    PUSH_ENVELOPE,
    WIPE_REPORT,
    ItemStatus,
    PullPage,
    PushRequest,
    PushResponse,
    SyncEvents,
    WipeReport,
    encode,
)
from sync_server.api.deps import Scanner, SessionDep, WipingDevice
from sync_server.api.wire import decode_body, wire_openapi, wire_request_openapi
from sync_server.db import utcnow
from sync_server.errors import not_found
from sync_server.metrics import count_push, count_scan
from sync_server.services.devices import confirm_wipe, record_sync
from sync_server.services.pull import EVENTS, parse_cursor, pull_page, sync_events
from sync_server.services.push import PushContext, push_batch

router = APIRouter(prefix="/v1/sync", tags=["sync"])
MAX_WAIT_S = 30
POLL_S = 0.2
AppVersion = Annotated[str | None, Header(alias="X-Doorcheck-App-Version", max_length=64)]


@router.get("/events", operation_id="sync_events", openapi_extra=wire_openapi(SyncEvents))
def events(principal: Scanner, session: SessionDep) -> Response:
    data = sync_events(session.connection(), principal.organization_id)
    return Response(encode(SyncEvents(data=data)), media_type="application/json")


def _owned_event(conn: Any, principal: Scanner, event_id: str) -> Any:
    row = (
        conn.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
        if len(event_id) <= 40
        else None
    )
    if row is None or row.organization_id != principal.organization_id:
        raise not_found("event")
    return row


@router.get(
    "/events/{event_id}/pull", operation_id="sync_pull", openapi_extra=wire_openapi(PullPage)
)
async def pull(
    event_id: str,
    principal: Scanner,
    request: Request,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PULL_LIMIT)] = 1000,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_S)] = 0,
) -> Response:
    """A page of changes after `cursor`; with `wait=N` and nothing new, waits up to N seconds."""
    after = parse_cursor(cursor)
    engine = request.app.state.read_engine
    snapshot = request.app.state.snapshot_engine  # a page is one consistent snapshot

    def page() -> PullPage:
        with Session(snapshot) as session:
            conn = session.connection()
            return pull_page(conn, _owned_event(conn, principal, event_id), after, limit)

    def head() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(EVENTS.c.change_seq).where(EVENTS.c.id == event_id)
                ).scalar_one()
            )

    result = await run_in_threadpool(page)
    if wait and after is not None and not result.attendees:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and await run_in_threadpool(head) <= after:
            if await request.is_disconnected():
                break
            await asyncio.sleep(POLL_S)
        result = await run_in_threadpool(page)
    return _maybe_gzip(request, encode(result))


def _maybe_gzip(request: Request, body: bytes) -> Response:
    """Pulls are the only large answers: they alone are compressed (level 5: fast, ~6x)."""
    if len(body) >= 2048 and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            gzip.compress(body, 5),
            media_type="application/json",
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(body, media_type="application/json")


@router.post(
    "/push", operation_id="sync_push", openapi_extra=wire_openapi(PushResponse, PushRequest)
)
async def push(
    principal: Scanner,
    session: SessionDep,
    request: Request,
    app_version: AppVersion = None,
) -> Response:
    """Upload a batch of offline readings and door registrations (each idempotent by its id)."""
    body = decode_body(PUSH_ENVELOPE, await request.body())

    def apply() -> bytes:
        offset = (
            record_sync(
                session,
                device_id=principal.subject_id,
                device_time=body.device_time,
                app_version=app_version,
            )
            if principal.kind == "device"
            else 0
        )
        session.commit()
        ctx = PushContext(
            principal.organization_id, principal.subject_id, offset or 0, request.app.state.secret
        )
        results = push_batch(session, ctx, body)
        count_push(r.status.value for r in results)
        for r in results:
            if r.server_verdict is not None and r.status is ItemStatus.APPLIED:
                count_scan("offline", r.server_verdict.status.value, r.server_verdict.reason.value)
        return encode(PushResponse(server_time=utcnow(), results=results))

    return Response(await run_in_threadpool(apply), media_type="application/json")


class WipeConfirmation(BaseModel):
    object: str = "device_wipe"
    device_id: str
    confirmed_at: datetime
    reason: str
    pending_uploads: int


@router.post(
    "/wiped",
    operation_id="confirm_device_wipe",
    response_model=WipeConfirmation,
    openapi_extra=wire_request_openapi(WipeReport),
)
async def wiped(principal: WipingDevice, session: SessionDep, request: Request) -> Response:
    """The device erased its data and key: why, and how many uploads it lost. Records the
    confirmation and revokes the device. Takes a revoked device's token too (a revoked gate
    erases itself and says so); confirming again answers the first confirmation."""
    report = decode_body(WIPE_REPORT, await request.body())

    def confirm() -> bytes:
        device = confirm_wipe(session, device_id=principal.subject_id, report=report)
        assert device.wipe_confirmed_at is not None and device.wipe_reason is not None
        return (
            WipeConfirmation(
                device_id=device.id,
                confirmed_at=device.wipe_confirmed_at,
                reason=device.wipe_reason,
                pending_uploads=device.pending_uploads or 0,
            )
            .model_dump_json()
            .encode()
        )

    return Response(await run_in_threadpool(confirm), media_type="application/json")
