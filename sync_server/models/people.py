"""Attendees (with their folded check-in state and change sequence) and the reading log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as PField
from sqlalchemy import Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from shared.rules import AttendeeStatus, Direction
from sync_server.models.base import Input, UTCDatetime, json_field, storable, time_field

__all__ = [
    "Attendee",
    "AttendeeCreate",
    "AttendeePublic",
    "AttendeeSource",
    "AttendeeTombstone",
    "AttendeeUpdate",
    "Scan",
    "ScanPublic",
    "ScanRequest",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
_EMAIL = re.compile(
    r"[^@\s]{1,64}@(?=.{1,253}$)[A-Za-z0-9\u0080-\uffff-]{1,63}(\.[A-Za-z0-9\u0080-\uffff-]{1,63})+"
)


def _email(value: str) -> str:
    """A plausible address (local@domain.tld, RFC 5321 lengths): checked fast, enough for a
    door list; nothing is sent to it."""
    value = value.strip()
    if len(value) > 320 or not _EMAIL.fullmatch(value):
        raise ValueError("not a valid email address")
    return value


Email = Annotated[str, AfterValidator(_email)]
MAX_CUSTOM_DATA_BYTES = 16 * 1024


class AttendeeSource(StrEnum):
    API = "api"
    IMPORT = "import"
    DOOR = "door"


class AttendeeCreate(Input):
    first_name: Name
    last_name: Name
    email: Email | None = None
    phone: Text | None = None
    company: Text | None = None
    ticket_type: str = PField(min_length=1, max_length=64)
    tags: list[Tag] = PField(default_factory=list, max_length=50)
    custom_data: dict[str, Any] = PField(default_factory=dict)
    code: Code | None = None
    status: AttendeeStatus = AttendeeStatus.VALID
    valid_from: UTCDatetime | None = None
    valid_until: UTCDatetime | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if len(repr(self.custom_data)) > MAX_CUSTOM_DATA_BYTES:
            raise ValueError("custom_data is larger than 16 kB")
        return self

    @field_validator("code")
    @classmethod
    def _not_signed(cls, code: str | None) -> str | None:
        if code is not None and code.upper().startswith("DC1"):
            raise ValueError("custom codes may not start with DC1 (reserved for signed tickets)")
        return code


class AttendeeUpdate(Input):
    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Text | None = None
    company: Text | None = None
    ticket_type: str | None = PField(default=None, min_length=1, max_length=64)
    tags: list[Tag] | None = PField(default=None, max_length=50)
    custom_data: dict[str, Any] | None = None
    code: Code | None = None
    status: AttendeeStatus | None = None
    valid_from: UTCDatetime | None = None
    valid_until: UTCDatetime | None = None


class Attendee(SQLModel, table=True):
    __tablename__ = "attendees"
    __table_args__ = (
        UniqueConstraint("event_id", "email_norm"),
        UniqueConstraint("event_id", "code"),
        Index("ix_attendees_event_seq", "event_id", "seq"),
        Index("ix_attendees_code", "code"),
    )

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", ondelete="CASCADE")
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    email_norm: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    ticket_type_id: str = Field(foreign_key="ticket_types.id", index=True)
    tags: list[str] = json_field(list)
    custom_data: dict[str, Any] = json_field(dict)
    code: str | None = Field(default=None, max_length=512)
    qr: str = Field(max_length=600)
    status: str = Field(default=AttendeeStatus.VALID, max_length=16)
    source: str = Field(default=AttendeeSource.API, max_length=16)
    valid_from: datetime | None = time_field()
    valid_until: datetime | None = time_field()
    state: dict[str, Any] = json_field(dict)
    entries: int = 0
    last_scan_at: datetime | None = time_field()
    seq: int = 0
    status_changed_at: datetime | None = time_field()
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class AttendeePublic(BaseModel):
    object: str = "attendee"
    id: str
    event_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company: str | None
    ticket_type: str
    tags: list[str]
    custom_data: dict[str, Any]
    code: str | None
    qr: str
    status: str
    source: str
    valid_from: datetime | None
    valid_until: datetime | None
    inside: dict[str, bool]
    entries: int
    last_scan_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any], ticket_type_slug: str) -> AttendeePublic:
        """The API's view of an attendee row (a table row's mapping or `Attendee.model_dump()`)."""
        zones = (row.get("state") or {}).get("zones") or {}
        fields = {name: row.get(name) for name in _PUBLIC_FROM_ROW}
        return cls(
            **fields,
            tags=list(row.get("tags") or []),
            custom_data=dict(row.get("custom_data") or {}),
            entries=row.get("entries") or 0,
            ticket_type=ticket_type_slug,
            inside={key: bool(z.get("inside")) for key, z in zones.items()},
        )


_PUBLIC_FROM_ROW = (
    "id", "event_id", "first_name", "last_name", "email", "phone", "company", "code", "qr",
    "status", "source", "valid_from", "valid_until", "last_scan_at", "created_at", "updated_at",
)  # fmt: skip


class AttendeeTombstone(SQLModel, table=True):
    """A deleted attendee, kept so devices learn of the deletion on their next pull."""

    __tablename__ = "attendee_tombstones"
    __table_args__ = (Index("ix_tombstones_event_seq", "event_id", "seq"),)

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", ondelete="CASCADE")
    seq: int
    deleted_at: datetime = time_field(nullable=False, default_now=True)


class ScanRequest(Input):
    """An online scan's body (the code itself may hold anything: it is resolved, never kept)."""

    code: str = PField(max_length=100_000)
    direction: Direction | None = None
    scanned_at: UTCDatetime | None = None
    id: str | None = PField(default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    operator: str | None = PField(default=None, max_length=200)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        return value if info.field_name == "code" else storable(value)


class Scan(SQLModel, table=True):
    """One reading: accepted or denied, online or synced from a device; voided ones don't count."""

    __tablename__ = "scans"
    __table_args__ = (
        Index("ix_scans_event_received", "event_id", "received_at"),
        Index("ix_scans_attendee_time", "attendee_id", "scanned_at"),
        Index("ix_scans_checkpoint", "checkpoint_id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(foreign_key="events.id", ondelete="CASCADE")
    checkpoint_id: str = Field(foreign_key="checkpoints.id", ondelete="CASCADE")
    zone_id: str | None = Field(default=None, max_length=40)
    attendee_id: str | None = Field(default=None, foreign_key="attendees.id", ondelete="SET NULL")
    code: str = Field(max_length=520)
    direction: str = Field(max_length=8)
    status: str = Field(max_length=16)
    reason: str = Field(max_length=40)
    warnings: list[str] = json_field(list)
    occupancy_delta: int = 0
    voided: bool = False
    scanned_at: datetime = time_field(nullable=False)
    received_at: datetime = time_field(nullable=False, default_now=True)
    device_id: str | None = Field(default=None, max_length=40, index=True)
    operator: str | None = Field(default=None, max_length=200)
    offline: bool = False
    manual: bool = False
    hlc: str | None = Field(default=None, max_length=128)
    device_status: str | None = Field(default=None, max_length=16)
    device_reason: str | None = Field(default=None, max_length=40)
    conflict_id: str | None = Field(default=None, max_length=40)
    ordered_at: datetime | None = time_field()
    result: dict[str, Any] = json_field(dict)
    # A supervisor's override (SPEC section 11): why, the note (personal data) and the denial
    # it lifted. An override reading is admitted and never a conflict by itself.
    override: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    override_reason: str | None = Field(default=None, max_length=32)
    override_note: str | None = Field(default=None, max_length=1000)
    overridden_reason: str | None = Field(default=None, max_length=40)


class ScanPublic(BaseModel):
    object: str = "scan"
    id: str
    event_id: str
    checkpoint_id: str
    zone_id: str | None
    attendee_id: str | None
    code: str
    direction: str
    status: str
    reason: str
    warnings: list[str]
    voided: bool
    scanned_at: datetime
    received_at: datetime
    device_id: str | None
    operator: str | None
    offline: bool
    manual: bool
    override: bool = False
    override_reason: str | None = None
    override_note: str | None = None
    overridden_reason: str | None = None
