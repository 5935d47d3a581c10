"""Webhook endpoints and the transactional outbox: messages, per-endpoint deliveries, attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text, text
from sqlmodel import Column, Field, SQLModel

from sync_server.models.base import json_field, time_field

__all__ = [
    "DUE_CONDITION",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookFanout",
    "WebhookMessage",
]


# a delivery still to be attempted (the states a dispatcher claims from)
DUE_CONDITION = "state IN ('pending', 'retrying')"


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    events: list[str] = json_field(list)
    event_ids: list[str] = json_field(list)
    description: str | None = Field(default=None, max_length=500)
    active: bool = True
    secret: str = Field(max_length=200)  # sealed (sync_server.security.SecretBox)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = time_field()
    disabled_reason: str | None = Field(default=None, max_length=500)
    failing_since: datetime | None = time_field()
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class WebhookMessage(SQLModel, table=True):
    __tablename__ = "webhook_messages"

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    event_id: str | None = Field(default=None, max_length=40)
    type: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = time_field(nullable=False, default_now=True)


class WebhookFanout(SQLModel, table=True):
    """A message whose deliveries a dispatcher has yet to create: the endpoints subscribed when
    it was written (comma-separated ids). Written in the change's transaction instead of one
    delivery row per endpoint, which kept a scan's transaction lighter; a dispatcher turns it
    into deliveries and deletes it in one transaction (`outbox.fan_out`)."""

    __tablename__ = "webhook_fanout"

    message_id: str = Field(
        primary_key=True, max_length=40, foreign_key="webhook_messages.id", ondelete="CASCADE"
    )
    endpoint_ids: str = Field(sa_column=Column(Text, nullable=False))


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    # the due deliveries in claim order; the dispatcher's query repeats DUE word for word, as a
    # partial index is used only for a query whose WHERE holds its own condition
    __table_args__ = (
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            sqlite_where=text(DUE_CONDITION),
            postgresql_where=text(DUE_CONDITION),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    message_id: str = Field(foreign_key="webhook_messages.id", ondelete="CASCADE", index=True)
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE", index=True)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = time_field()
    locked_until: datetime | None = time_field()
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"

    id: str = Field(primary_key=True, max_length=40)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", ondelete="CASCADE", index=True)
    attempted_at: datetime = time_field(nullable=False, default_now=True)
    status_code: int | None = None
    duration_ms: int = 0
    response_excerpt: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, max_length=500)
    details: dict[str, Any] = json_field(dict)
