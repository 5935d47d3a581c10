"""Scanner devices (enrolment, token, clock offset, remote wipe), door registrations and sync
conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from shared.conflicts import ConflictStatus
from sync_server.models.base import json_field, time_field

__all__ = ["Conflict", "Device", "DoorRegistration"]


class Device(SQLModel, table=True):
    __tablename__ = "devices"

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    enrollment_code_hash: str | None = Field(default=None, max_length=64, unique=True)
    enrollment_expires_at: datetime | None = time_field()
    token_prefix: str | None = Field(default=None, max_length=20)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    enrolled_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()
    last_seen_at: datetime | None = time_field()
    app_version: str | None = Field(default=None, max_length=64)
    # device minus server, in ms: a tablet that believes it is 1970 is ~1.7e12 ms behind
    clock_offset_ms: int | None = Field(default=None, sa_type=BigInteger)
    # remote wipe (POST /v1/devices/{id}/wipe, then the device's POST /v1/sync/wiped)
    wipe_requested_at: datetime | None = time_field()
    wipe_confirmed_at: datetime | None = time_field()
    wipe_reason: str | None = Field(default=None, max_length=16)  # shared.sync.WipeReason
    # readings + registrations the device last said it still queues (X-Doorcheck-Pending)
    pending_uploads: int | None = None
    pending_reported_at: datetime | None = time_field()
    created_at: datetime = time_field(nullable=False, default_now=True)


class DoorRegistration(SQLModel, table=True):
    """A walk-in registered on a device; its client id makes the push idempotent."""

    __tablename__ = "door_registrations"

    id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(foreign_key="events.id", index=True, ondelete="CASCADE")
    device_id: str | None = Field(default=None, max_length=40)
    attendee_id: str | None = Field(default=None, max_length=40)
    payload: dict[str, Any] = json_field(dict)
    result: dict[str, Any] = json_field(dict)
    created_at: datetime = time_field(nullable=False)
    received_at: datetime = time_field(nullable=False, default_now=True)


class Conflict(SQLModel, table=True):
    __tablename__ = "conflicts"
    __table_args__ = (Index("ix_conflicts_event_status", "event_id", "status"),)

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", ondelete="CASCADE")
    event_id: str = Field(foreign_key="events.id", ondelete="CASCADE")
    kind: str = Field(max_length=40)
    status: str = Field(default=ConflictStatus.OPEN, max_length=16)
    scan_ids: list[str] = json_field(list)
    attendee_ids: list[str] = json_field(list)
    registration_id: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = json_field(dict)
    resolution: str | None = Field(default=None, max_length=32)
    resolved_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = time_field()
    note: str | None = Field(default=None, max_length=2000)
    created_at: datetime = time_field(nullable=False, default_now=True)
