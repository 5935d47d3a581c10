"""What was sent: an endpoint's delivery log and the organization's messages, filtered by state,
event type and time range (SPEC sections 8 and 13). Scope `webhooks` or `admin`."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import col, select

from sync_server.api.deps import SessionDep, WebhookAdmin
from sync_server.api.pagination import Page, paginate
from sync_server.errors import ApiError
from sync_server.models import WebhookDelivery, WebhookMessage
from sync_server.services import webhook_endpoints as service
from sync_server.webhooks.outbox import TEST_TYPE, fan_out
from sync_server.webhooks.payloads import EVENT_TYPES

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class DeliveryState(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AttemptPublic(BaseModel):
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None
    error: str | None
    attempted_at: datetime


class DeliveryPublic(BaseModel):
    object: str = "webhook_delivery"
    id: str
    message_id: str
    endpoint_id: str
    type: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[AttemptPublic]


class MessagePublic(BaseModel):
    object: str = "webhook_message"
    id: str = Field(description="The `webhook-id` header and the body's `id`")
    type: str
    event_id: str | None
    created_at: datetime
    body: dict[str, Any] = Field(description="The JSON body sent, as sent")


TypeFilter = Annotated[
    str | None, Query(max_length=64, description="Only this event type (`checkin.accepted`, …)")
]
Since = Annotated[AwareDatetime | None, Query(description="Created at or after (RFC 3339)")]
Until = Annotated[AwareDatetime | None, Query(description="Created before (RFC 3339)")]


def _known_type(value: str | None) -> str | None:
    if value is not None and value not in EVENT_TYPES and value != TEST_TYPE:
        detail = {"field": "type", "code": "unknown", "message": "see GET /v1/webhooks/catalog"}
        raise ApiError(422, "validation_error", f"Unknown event type {value[:64]!r}", [detail])
    return value


def _range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        detail = {"field": "until", "code": "range", "message": "until must be after since"}
        raise ApiError(422, "validation_error", "until must be after since", [detail])


@router.get(
    "/messages",
    operation_id="list_webhook_messages",
    summary="List the organization's webhook messages",
)
def messages(
    principal: WebhookAdmin,
    session: SessionDep,
    type: TypeFilter = None,
    event_id: Annotated[str | None, Query(max_length=40)] = None,
    since: Since = None,
    until: Until = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[MessagePublic]:
    """Every message written for the organization's endpoints, newest first, with its body as
    sent: find what a receiver should have got, whatever endpoint it went to."""
    _known_type(type)
    _range(since, until)
    query = select(WebhookMessage).where(
        WebhookMessage.organization_id == principal.organization_id
    )
    if type:
        query = query.where(WebhookMessage.type == type)
    if event_id:
        query = query.where(WebhookMessage.event_id == event_id)
    if since:
        query = query.where(col(WebhookMessage.created_at) >= since)
    if until:
        query = query.where(col(WebhookMessage.created_at) < until)

    def render(m: WebhookMessage) -> MessagePublic:
        return MessagePublic(
            id=m.id,
            type=m.type,
            event_id=m.event_id,
            created_at=m.created_at,
            body=json.loads(m.body),
        )

    return paginate(session, query, WebhookMessage, limit=limit, cursor=cursor, render=render)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    summary="List an endpoint's deliveries",
)
def deliveries(
    webhook_id: str,
    principal: WebhookAdmin,
    session: SessionDep,
    request: Request,
    status: Annotated[
        DeliveryState | None, Query(description="Only deliveries in this state")
    ] = None,
    type: TypeFilter = None,
    since: Since = None,
    until: Until = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DeliveryPublic]:
    """The endpoint's deliveries, newest first, each with every attempt (status code, duration,
    response excerpt, error); filter by `status`, `type` and a `since`/`until` time range."""
    _known_type(type)
    _range(since, until)
    endpoint = service.owned_endpoint(
        session, organization_id=principal.organization_id, endpoint_id=webhook_id
    )
    # messages no dispatcher has fanned out yet are listed too (none may be running): fan them
    # out, then read in a new transaction, which sees them
    with request.app.state.engine.begin() as conn:
        fan_out(conn)
    session.commit()
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status:
        query = query.where(WebhookDelivery.state == status.value)
    if type:
        query = query.join(
            WebhookMessage, col(WebhookMessage.id) == col(WebhookDelivery.message_id)
        ).where(WebhookMessage.type == type)
    if since:
        query = query.where(col(WebhookDelivery.created_at) >= since)
    if until:
        query = query.where(col(WebhookDelivery.created_at) < until)
    page = paginate(session, query, WebhookDelivery, limit=limit, cursor=cursor, render=lambda d: d)
    page.data = [_delivery_public(r) for r in service.delivery_records(session, page.data)]
    return page


def _delivery_public(record: service.DeliveryRecord) -> DeliveryPublic:
    return DeliveryPublic(
        **record.delivery.model_dump(exclude={"locked_until"}),
        type=record.type,
        attempt_log=[
            AttemptPublic.model_validate(a, from_attributes=True) for a in record.attempts
        ],
    )
