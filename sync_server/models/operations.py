"""What the API keeps for its callers beside the data: answers stored under an `Idempotency-Key`
and the rate-limit windows counted in the database (shared by every worker and server)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from sync_server.models.base import time_field

__all__ = ["IdempotencyRecord", "RateLimitWindow"]


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a request sent with an `Idempotency-Key`, per organization, for 24 h.
    `status` is null while the first request is still being answered."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    organization_id: str = Field(
        primary_key=True, max_length=40, foreign_key="organizations.id", ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status: int | None = None
    content_type: str | None = Field(default=None, max_length=200)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = time_field(nullable=False, default_now=True)
    expires_at: datetime = time_field(nullable=False)


class RateLimitWindow(SQLModel, table=True):
    """Requests counted for one caller in one minute (`window` = unix minutes)."""

    __tablename__ = "rate_limit_windows"

    subject: str = Field(primary_key=True, max_length=80)
    window: int = Field(primary_key=True)
    count: int = 0
