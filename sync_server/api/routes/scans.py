"""Online scans at a checkpoint, the reading log, and the event's live stats."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, select

from shared.denials import DenialDetailJSON
from sync_server.api.deps import EventDep, Principal, SessionDep, require
from sync_server.api.idempotency import claim_inline, keep_inline, keyed_inline
from sync_server.api.pagination import Page, paginate
from sync_server.metrics import count_scan
from sync_server.models import Scan
from sync_server.models.core import Scope
from sync_server.models.people import ScanPublic, ScanRequest
from sync_server.services.scanning import ScanOutcome, ScanRequestData, scan_online
from sync_server.services.stats import event_stats

router = APIRouter(tags=["scans"])


class VerdictPublic(BaseModel):
    status: str
    reason: str
    message: str
    warnings: list[str]
    inside_since: datetime | None = None
    via_checkpoint_id: str | None = None
    repeat: bool = False  # the verdict on record again (a double read): not a new reading
    detail: DenialDetailJSON | None = None  # a denial's: what staff need to act (SPEC 11)


class ScanAttendee(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str | None
    ticket_type: str
    tags: list[str]
    is_vip: bool
    status: str


class ScanResult(BaseModel):
    object: str = "scan_result"
    scan_id: str | None
    recorded: bool
    verdict: VerdictPublic
    attendee: ScanAttendee | None
    event_id: str
    checkpoint_id: str
    zone_id: str | None
    direction: str
    scanned_at: datetime


def scan_result(outcome: ScanOutcome) -> ScanResult:
    verdict, attendee = outcome.verdict, outcome.attendee
    person = ScanAttendee.model_validate(attendee, from_attributes=True) if attendee else None
    return ScanResult(
        scan_id=outcome.scan_id,
        recorded=outcome.scan_id is not None,
        verdict=VerdictPublic(
            status=verdict.status,
            reason=verdict.reason,
            message=verdict.message,
            warnings=list(verdict.warnings),
            inside_since=verdict.inside_since,
            via_checkpoint_id=verdict.via_checkpoint_id,
            repeat=verdict.repeat,
            detail=DenialDetailJSON.of(verdict.detail) if verdict.detail is not None else None,
        ),
        attendee=person,
        event_id=outcome.checkpoint.event_id,
        checkpoint_id=outcome.checkpoint.id,
        zone_id=outcome.checkpoint.zone_id,
        direction=verdict.direction,
        scanned_at=outcome.scanned_at,
    )


_authorize_scan = require(Scope.WRITE, Scope.SCAN)


_SCAN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ScanRequest.model_json_schema()}},
    }
}


@router.post(
    "/v1/checkpoints/{checkpoint_id}/scans",
    operation_id="scan_online",
    openapi_extra=_SCAN_BODY,
    response_model=ScanResult,
)
async def scan(checkpoint_id: str, request: Request, response: Response) -> Response:
    """Scan a code at a checkpoint now: the same rules a device applies offline. Needs the
    `write` scope or a device token.

    The door's hottest path: authentication and the scan run in one hop to the thread pool.
    """

    raw = await request.body()

    def authorized_scan() -> bytes | Response:
        principal = _authorize_scan(request, response)  # the key first, then the body
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            # an Idempotency-Key is taken, and the answer kept, in the scan's own transaction
            replay = claim_inline(request, principal.organization_id, session)
            if replay is not None:
                return replay
            return decide(principal, session)

    def decide(principal: Principal, session: Session) -> bytes:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body",),
                        "msg": "JSON decode error",
                        "input": {},
                    }
                ]
            ) from exc
        try:
            body = ScanRequest.model_validate(parsed)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from exc
        data = ScanRequestData(
            code=body.code,
            direction=body.direction,
            scanned_at=body.scanned_at,
            scan_id=body.id,
            operator=body.operator,
            device_id=principal.subject_id if principal.kind == "device" else None,
        )
        answers: list[bytes] = []

        def keep(outcome: ScanOutcome) -> None:
            answers.append(scan_result(outcome).model_dump_json().encode())
            keep_inline(request, session.connection(), answers[0])

        outcome = scan_online(
            session,
            organization_id=principal.organization_id,
            checkpoint_id=checkpoint_id,
            request=data,
            # the answer is rendered inside the transaction only when it is kept there
            before_commit=keep if keyed_inline(request) else None,
        )
        verdict = outcome.verdict
        count_scan("online", verdict.status.value, verdict.reason.value)
        return answers[0] if answers else scan_result(outcome).model_dump_json().encode()

    body = await run_in_threadpool(authorized_scan)
    if isinstance(body, Response):
        return body
    limits = {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit")}
    return Response(body, media_type="application/json", headers=limits)


@router.get("/v1/events/{event_id}/scans", operation_id="list_scans")
def list_scans(
    event: EventDep,
    session: SessionDep,
    checkpoint: Annotated[str | None, Query(max_length=40)] = None,
    attendee: Annotated[str | None, Query(max_length=40)] = None,
    device: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ScanPublic]:
    query = select(Scan).where(Scan.event_id == event.id)
    for column, value in (
        (Scan.checkpoint_id, checkpoint),
        (Scan.attendee_id, attendee),
        (Scan.device_id, device),
        (Scan.status, status),
    ):
        if value:
            query = query.where(col(column) == value)
    return _paginate_scans(session, query, limit, cursor)


def _paginate_scans(
    session: Any, query: Any, limit: int | None, cursor: str | None
) -> Page[ScanPublic]:
    # Scans have no created_at: the log pages by received_at.
    return paginate(
        session,
        query,
        Scan,
        limit=limit,
        cursor=cursor,
        render=lambda s: ScanPublic.model_validate(s, from_attributes=True),
        order_column="received_at",
    )


@router.get("/v1/events/{event_id}/stats", operation_id="get_event_stats")
def stats(event: EventDep, session: SessionDep) -> dict[str, Any]:
    return event_stats(session, event)
