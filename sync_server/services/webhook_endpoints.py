"""Webhook endpoints of an organization: create and update (URL and subscriptions checked), the
secret and its rotation, test messages, the delivery log and replays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from shared import ids
from shared.webhooks import new_secret
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from sync_server.models.base import new_id
from sync_server.security import SecretBox
from sync_server.webhooks.ssrf import UnsafeUrl, check_url

__all__ = [
    "PREVIOUS_SECRET_GRACE",
    "DeliveryRecord",
    "EndpointFields",
    "create_endpoint",
    "delete_endpoint",
    "delivery_records",
    "owned_endpoint",
    "replay_delivery",
    "rotate_secret",
    "send_test",
    "update_endpoint",
]

PREVIOUS_SECRET_GRACE = timedelta(hours=24)
TEST_TYPE = "webhook.test"


@dataclass(frozen=True, slots=True)
class EndpointFields:
    """What an organizer chooses for an endpoint (already shape-checked by the route)."""

    url: str
    events: list[str]
    event_ids: list[str] = field(default_factory=list)
    description: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery with its message type and every attempt, oldest first."""

    delivery: WebhookDelivery
    type: str
    attempts: list[WebhookAttempt]


def _invalid(field_name: str, code: str, message: str) -> ApiError:
    detail = {"field": field_name, "code": code, "message": message}
    return ApiError(422, "validation_error", message, [detail])


def _checked_url(url: str, *, allow_private: bool) -> str:
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeUrl as exc:
        raise _invalid("url", "unsafe_url", f"The webhook URL is refused: {exc}") from None
    return url


def _checked_event_ids(session: Session, organization_id: str, event_ids: Sequence[str]) -> None:
    wanted = set(event_ids)
    if not wanted:
        return
    found = set(
        session.exec(
            select(Event.id).where(
                col(Event.id).in_(wanted), Event.organization_id == organization_id
            )
        ).all()
    )
    unknown = sorted(wanted - found)
    if unknown:
        raise _invalid("event_ids", "unknown_event", f"No such event: {unknown[0]}")


def owned_endpoint(session: Session, *, organization_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The endpoint, or a 404 that reads the same for a missing and a foreign id."""
    endpoint = session.get(WebhookEndpoint, endpoint_id) if len(endpoint_id) <= 40 else None
    if endpoint is None or endpoint.organization_id != organization_id:
        raise not_found("webhook endpoint")
    return endpoint


def create_endpoint(
    session: Session,
    *,
    organization_id: str,
    fields: EndpointFields,
    allow_private: bool,
    box: SecretBox,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (``whsec_…``, to show the caller once; stored sealed)."""
    _checked_url(fields.url, allow_private=allow_private)
    _checked_event_ids(session, organization_id, fields.event_ids)
    endpoint = WebhookEndpoint(
        id=new_id(ids.WEBHOOK_ENDPOINT),
        organization_id=organization_id,
        url=fields.url,
        events=list(fields.events),
        event_ids=list(fields.event_ids),
        description=fields.description,
        active=fields.active,
        secret=box.seal(secret := new_secret(os.urandom(32))),
    )
    session.add(endpoint)
    session.commit()
    return endpoint, secret


def update_endpoint(
    session: Session, endpoint: WebhookEndpoint, *, changes: dict[str, Any], allow_private: bool
) -> WebhookEndpoint:
    """Apply `changes` (a subset of url, events, event_ids, description, active); turning an
    endpoint back on clears why it was disabled."""
    if "url" in changes:
        _checked_url(changes["url"], allow_private=allow_private)
    if "event_ids" in changes:
        _checked_event_ids(session, endpoint.organization_id, changes["event_ids"])
    reactivated = changes.get("active") is True and (
        not endpoint.active or endpoint.disabled_reason is not None
    )
    for name, value in changes.items():
        setattr(endpoint, name, list(value) if isinstance(value, list) else value)
    if reactivated:
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    session.commit()
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint with its deliveries and their attempts (cascade)."""
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(delivery_ids)))
    session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id))
    session.delete(endpoint)
    session.commit()


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, *, now: datetime, box: SecretBox
) -> str:
    """A new secret (answered once, stored sealed); the old one still signs for
    `PREVIOUS_SECRET_GRACE`."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + PREVIOUS_SECRET_GRACE
    secret = new_secret(os.urandom(32))
    endpoint.secret = box.seal(secret)
    endpoint.updated_at = now
    session.add(endpoint)
    session.commit()
    return secret


def send_test(session: Session, endpoint: WebhookEndpoint) -> str:
    """Queue a `webhook.test` message for this endpoint alone; answers the message id."""
    from sync_server.webhooks.outbox import enqueue_for_endpoint

    message_id = enqueue_for_endpoint(
        session.connection(),
        endpoint_id=endpoint.id,
        organization_id=endpoint.organization_id,
        type=TEST_TYPE,
        data={"endpoint_id": endpoint.id, "message": "Hello from doorcheck"},
    )
    session.commit()
    return message_id


def delivery_records(
    session: Session, deliveries: Sequence[WebhookDelivery]
) -> list[DeliveryRecord]:
    """Each delivery with its message type and attempts (two queries for the whole page)."""
    if not deliveries:
        return []
    message_ids = {d.message_id for d in deliveries}
    types = dict(
        session.exec(
            select(WebhookMessage.id, WebhookMessage.type).where(
                col(WebhookMessage.id).in_(message_ids)
            )
        ).all()
    )
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    rows = session.exec(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(list(attempts)))
        .order_by(col(WebhookAttempt.attempted_at), col(WebhookAttempt.id))
    )
    for attempt in rows:
        attempts[attempt.delivery_id].append(attempt)
    return [DeliveryRecord(d, types.get(d.message_id, ""), attempts[d.id]) for d in deliveries]


def replay_delivery(session: Session, *, organization_id: str, delivery_id: str) -> str:
    """Send a delivery's message again to its endpoint as a new delivery; answers its id."""
    from sync_server.webhooks.outbox import replay

    found = None
    if len(delivery_id) <= 40:
        found = session.exec(
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookEndpoint.organization_id == organization_id,
            )
        ).first()
    if found is None:
        raise not_found("delivery")
    new_delivery_id = replay(session.connection(), delivery_id=delivery_id)
    session.commit()
    return new_delivery_id
