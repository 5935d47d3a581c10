"""Webhook endpoints (SPEC section 8): the catalog, create/list/read/update/delete, test
messages, secret rotation, the delivery log and replays. Scope `webhooks` or `admin`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlmodel import select

from shared.webhooks import WILDCARD
from sync_server.api.deps import SessionDep, SettingsDep, WebhookAdmin
from sync_server.api.pagination import Page, paginate
from sync_server.db import utcnow
from sync_server.models import WebhookEndpoint
from sync_server.models.base import Input
from sync_server.services import webhook_endpoints as service
from sync_server.webhooks.payloads import CATALOG, EVENT_TYPES

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

EventId = Annotated[str, Field(min_length=1, max_length=40)]


def _known_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    for name in types:
        if name not in EVENT_TYPES and name != WILDCARD:
            raise ValueError(f"unknown event type {name[:64]!r}; see GET /v1/webhooks/catalog")
    return list(dict.fromkeys(types))


class WebhookCreate(Input):
    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=50)
    event_ids: list[EventId] = Field(default_factory=list, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    active: bool = True

    _types = field_validator("events")(_known_types)


class WebhookUpdate(Input):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    event_ids: list[EventId] | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None

    _types = field_validator("events")(_known_types)

    @model_validator(mode="after")
    def _no_nulls(self) -> WebhookUpdate:
        for name in ("url", "events", "event_ids", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class WebhookEndpointPublic(BaseModel):
    object: str = "webhook_endpoint"
    id: str
    url: str
    events: list[str]
    event_ids: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str


class WebhookSecretRotated(WebhookEndpointCreated):
    previous_secret_until: datetime | None


class EventTypePublic(BaseModel):
    type: str
    description: str
    example: dict[str, Any]


class Catalog(BaseModel):
    object: str = "list"
    data: list[EventTypePublic]


class Queued(BaseModel):
    message_id: str | None = None
    delivery_id: str | None = None


def _public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.model_validate(endpoint, from_attributes=True)


@router.get("/catalog", operation_id="get_webhook_catalog")
def catalog(principal: WebhookAdmin) -> Catalog:
    """Every webhook type with what it means and an example `data` payload."""
    return Catalog(
        data=[
            EventTypePublic(type=t.type, description=t.description, example=t.example)
            for t in CATALOG.values()
        ]
    )


@router.post("", status_code=201, operation_id="create_webhook")
def create(
    body: WebhookCreate,
    principal: WebhookAdmin,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> WebhookEndpointCreated:
    """A new endpoint; `secret` is in this answer only."""
    endpoint, secret = service.create_endpoint(
        session,
        organization_id=principal.organization_id,
        fields=service.EndpointFields(**body.model_dump()),
        allow_private=settings.webhook_allow_private,
        box=request.app.state.box,
    )
    return WebhookEndpointCreated(**_public(endpoint).model_dump(), secret=secret)


@router.get("", operation_id="list_webhooks")
def list_webhooks(
    principal: WebhookAdmin,
    session: SessionDep,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[WebhookEndpointPublic]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.organization_id == principal.organization_id
    )
    return paginate(session, query, WebhookEndpoint, limit=limit, cursor=cursor, render=_public)


@router.get("/{webhook_id}", operation_id="get_webhook")
def get(webhook_id: str, principal: WebhookAdmin, session: SessionDep) -> WebhookEndpointPublic:
    return _public(
        service.owned_endpoint(
            session, organization_id=principal.organization_id, endpoint_id=webhook_id
        )
    )


@router.patch("/{webhook_id}", operation_id="update_webhook")
def update(
    webhook_id: str,
    body: WebhookUpdate,
    principal: WebhookAdmin,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookEndpointPublic:
    endpoint = service.owned_endpoint(
        session, organization_id=principal.organization_id, endpoint_id=webhook_id
    )
    changes = body.model_dump(exclude_unset=True)
    endpoint = service.update_endpoint(
        session, endpoint, changes=changes, allow_private=settings.webhook_allow_private
    )
    return _public(endpoint)


@router.delete("/{webhook_id}", status_code=204, operation_id="delete_webhook")
def delete(webhook_id: str, principal: WebhookAdmin, session: SessionDep) -> Response:
    endpoint = service.owned_endpoint(
        session, organization_id=principal.organization_id, endpoint_id=webhook_id
    )
    service.delete_endpoint(session, endpoint)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", status_code=202, operation_id="test_webhook")
def test(webhook_id: str, principal: WebhookAdmin, session: SessionDep) -> Queued:
    """Queue a `webhook.test` message for this endpoint."""
    endpoint = service.owned_endpoint(
        session, organization_id=principal.organization_id, endpoint_id=webhook_id
    )
    return Queued(message_id=service.send_test(session, endpoint))


@router.post("/{webhook_id}/rotate-secret", operation_id="rotate_webhook_secret")
def rotate(
    webhook_id: str, principal: WebhookAdmin, session: SessionDep, request: Request
) -> WebhookSecretRotated:
    """A new secret, shown once; the previous one keeps signing for 24 hours."""
    endpoint = service.owned_endpoint(
        session, organization_id=principal.organization_id, endpoint_id=webhook_id
    )
    secret = service.rotate_secret(session, endpoint, now=utcnow(), box=request.app.state.box)
    return WebhookSecretRotated(
        **_public(endpoint).model_dump(),
        secret=secret,
        previous_secret_until=endpoint.previous_secret_until,
    )


@router.post(
    "/deliveries/{delivery_id}/replay", status_code=202, operation_id="replay_webhook_delivery"
)
def replay(delivery_id: str, principal: WebhookAdmin, session: SessionDep) -> Queued:
    """Send a delivery's message again, as a new delivery."""
    new_id = service.replay_delivery(
        session, organization_id=principal.organization_id, delivery_id=delivery_id
    )
    return Queued(delivery_id=new_id)
