"""Events with their ticket key pair, ticket types, zones and checkpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, StringConstraints, model_validator
from pydantic import Field as PField
from sqlalchemy import UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from shared.override import PIN_PATTERN
from shared.rules import CheckpointDirection
from shared.sync import DEVICE_DATA_TTL_HOURS, MAX_DEVICE_DATA_TTL_HOURS
from sync_server.models.base import Input, UTCDatetime, json_field, time_field

__all__ = [
    "DEVICE_SETTINGS",
    "Checkpoint",
    "CheckpointCreate",
    "CheckpointPublic",
    "CheckpointUpdate",
    "Event",
    "EventCreate",
    "EventPublic",
    "EventStatus",
    "EventUpdate",
    "TicketType",
    "TicketTypeCreate",
    "TicketTypePublic",
    "TicketTypeUpdate",
    "Zone",
    "ZoneCreate",
    "ZonePublic",
    "ZoneUpdate",
]

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_timezone)]


def _check_window(start: datetime | None, end: datetime | None, what: str) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"{what} ends before it starts")


# What a lost gate may expose (shared.sync.EventRow): how long a gate keeps the event's attendee
# data without a sync, whether it asks for a door PIN, whether it receives attendees' emails.
DEVICE_SETTINGS = ("device_data_ttl_hours", "require_device_pin", "gate_email")
TtlHours = Annotated[int, PField(ge=1, le=MAX_DEVICE_DATA_TTL_HOURS)]
OverridePin = Annotated[str, StringConstraints(pattern=PIN_PATTERN)]


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class EventCreate(Input):
    name: Name
    slug: Slug
    starts_at: UTCDatetime | None = None
    ends_at: UTCDatetime | None = None
    timezone: TimeZoneName = "UTC"
    capacity: int | None = PField(default=None, ge=0, le=10_000_000)
    status: EventStatus = EventStatus.PUBLISHED
    device_data_ttl_hours: TtlHours = DEVICE_DATA_TTL_HOURS
    require_device_pin: bool = False
    gate_email: bool = False
    override_pin: OverridePin | None = None  # write-only: stored hashed, shown as override_pin_set

    @model_validator(mode="after")
    def _window(self) -> Self:
        _check_window(self.starts_at, self.ends_at, "the event")
        return self


class EventUpdate(Input):
    name: Name | None = None
    slug: Slug | None = None
    starts_at: UTCDatetime | None = None
    ends_at: UTCDatetime | None = None
    timezone: TimeZoneName | None = None
    capacity: int | None = PField(default=None, ge=0, le=10_000_000)
    status: EventStatus | None = None
    device_data_ttl_hours: TtlHours | None = None
    require_device_pin: bool | None = None
    gate_email: bool | None = None
    override_pin: OverridePin | None = None  # null clears it


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    slug: str = Field(max_length=64)
    starts_at: datetime | None = time_field()
    ends_at: datetime | None = time_field()
    timezone: str = Field(default="UTC", max_length=64)
    capacity: int | None = None
    status: str = Field(default=EventStatus.PUBLISHED, max_length=16)
    ticket_public_key: str = Field(max_length=64)
    ticket_private_key_enc: str = Field(max_length=200)
    key_digest: str = Field(max_length=16, index=True)
    change_seq: int = 0
    next_ticket_type_number: int = 1
    tombstone_floor: int = 0
    device_data_ttl_hours: int = Field(
        default=DEVICE_DATA_TTL_HOURS,
        sa_column_kwargs={"server_default": text(str(DEVICE_DATA_TTL_HOURS))},
    )
    require_device_pin: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    gate_email: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The supervisor override PIN (SPEC section 11) as `shared.override.hash_pin` stores it:
    # gates receive it through sync and check PINs offline; the API shows only whether it is set.
    override_pin_hash: str | None = Field(default=None, max_length=200)
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class EventPublic(BaseModel):
    object: str = "event"
    id: str
    name: str
    slug: str
    starts_at: datetime | None
    ends_at: datetime | None
    timezone: str
    capacity: int | None
    status: str
    ticket_public_key: str
    device_data_ttl_hours: int
    require_device_pin: bool
    gate_email: bool
    override_pin_set: bool = False  # whether a supervisor override PIN is set (never the PIN)
    created_at: datetime
    updated_at: datetime


class TicketTypeCreate(Input):
    name: Name
    slug: Slug
    is_vip: bool = False
    valid_from: UTCDatetime | None = None
    valid_until: UTCDatetime | None = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        _check_window(self.valid_from, self.valid_until, "the validity")
        return self


class TicketTypeUpdate(Input):
    name: Name | None = None
    slug: Slug | None = None
    is_vip: bool | None = None
    valid_from: UTCDatetime | None = None
    valid_until: UTCDatetime | None = None


class TicketType(SQLModel, table=True):
    __tablename__ = "ticket_types"
    __table_args__ = (UniqueConstraint("event_id", "slug"), UniqueConstraint("event_id", "number"))

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    slug: str = Field(max_length=64)
    number: int
    is_vip: bool = False
    valid_from: datetime | None = time_field()
    valid_until: datetime | None = time_field()
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class TicketTypePublic(BaseModel):
    object: str = "ticket_type"
    id: str
    event_id: str
    name: str
    slug: str
    number: int
    is_vip: bool
    valid_from: datetime | None
    valid_until: datetime | None
    created_at: datetime
    updated_at: datetime


class ZoneCreate(Input):
    name: Name
    capacity: int | None = PField(default=None, ge=0, le=10_000_000)


class ZoneUpdate(Input):
    name: Name | None = None
    capacity: int | None = PField(default=None, ge=0, le=10_000_000)


class Zone(SQLModel, table=True):
    __tablename__ = "zones"

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    capacity: int | None = None
    occupancy: int = 0
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class ZonePublic(BaseModel):
    object: str = "zone"
    id: str
    event_id: str
    name: str
    capacity: int | None
    occupancy: int
    created_at: datetime
    updated_at: datetime


class CheckpointCreate(Input):
    name: Name
    zone_id: str | None = PField(default=None, max_length=40)
    direction: CheckpointDirection = CheckpointDirection.IN
    active: bool = True
    allowed_ticket_types: list[Slug] = PField(default_factory=list, max_length=100)
    required_tags: list[Tag] = PField(default_factory=list, max_length=100)
    excluded_tags: list[Tag] = PField(default_factory=list, max_length=100)
    max_entries: int | None = PField(default=None, ge=0, le=1_000_000)
    allow_reentry: bool = True
    anti_passback: bool = True
    open_from: UTCDatetime | None = None
    open_until: UTCDatetime | None = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        _check_window(self.open_from, self.open_until, "the opening window")
        return self


class CheckpointUpdate(Input):
    name: Name | None = None
    zone_id: str | None = PField(default=None, max_length=40)
    direction: CheckpointDirection | None = None
    active: bool | None = None
    allowed_ticket_types: list[Slug] | None = PField(default=None, max_length=100)
    required_tags: list[Tag] | None = PField(default=None, max_length=100)
    excluded_tags: list[Tag] | None = PField(default=None, max_length=100)
    max_entries: int | None = PField(default=None, ge=0, le=1_000_000)
    allow_reentry: bool | None = None
    anti_passback: bool | None = None
    open_from: UTCDatetime | None = None
    open_until: UTCDatetime | None = None


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoints"

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    zone_id: str | None = Field(default=None, foreign_key="zones.id", ondelete="SET NULL")
    direction: str = Field(default=CheckpointDirection.IN, max_length=8)
    active: bool = True
    allowed_ticket_types: list[str] = json_field(list)
    required_tags: list[str] = json_field(list)
    excluded_tags: list[str] = json_field(list)
    max_entries: int | None = None
    allow_reentry: bool = True
    anti_passback: bool = True
    open_from: datetime | None = time_field()
    open_until: datetime | None = time_field()
    created_at: datetime = time_field(nullable=False, default_now=True)
    updated_at: datetime = time_field(nullable=False, default_now=True)


class CheckpointPublic(BaseModel):
    object: str = "checkpoint"
    id: str
    event_id: str
    name: str
    zone_id: str | None
    direction: str
    active: bool
    allowed_ticket_types: list[str]
    required_tags: list[str]
    excluded_tags: list[str]
    max_entries: int | None
    allow_reentry: bool
    anti_passback: bool
    open_from: datetime | None
    open_until: datetime | None
    created_at: datetime
    updated_at: datetime
