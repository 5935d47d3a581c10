"""The wire schemas of the device sync protocol (SPEC section 7): pull pages, push batches and
per-item results, plus the conversions from cached rows to the values `decide` takes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.rules import (
    AttendeeStatus,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    History,
    Reason,
    Status,
    Ticket,
    ZonePresence,
)

__all__ = [
    "MAX_BATCH",
    "MAX_PULL_LIMIT",
    "AttendeeRow",
    "CheckpointRow",
    "DeviceVerdict",
    "EventRow",
    "ItemResult",
    "ItemStatus",
    "PullPage",
    "PushRequest",
    "PushResponse",
    "RegistrationItem",
    "ScanItem",
    "ServerVerdict",
    "TicketTypeRow",
    "Tombstone",
    "ZoneRow",
    "ZoneState",
    "history_from_state",
    "history_to_state",
]

MAX_BATCH = 5000
MAX_PULL_LIMIT = 5000

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class EventRow(_Wire):
    id: str
    name: str
    slug: str
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    timezone: str = "UTC"
    capacity: int | None = None
    status: str = "published"


class TicketTypeRow(_Wire):
    id: str
    slug: str
    name: str
    number: int
    is_vip: bool = False
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None


class ZoneRow(_Wire):
    id: str
    name: str
    capacity: int | None = None
    occupancy: int = 0


class CheckpointRow(_Wire):
    id: str
    event_id: str
    name: str
    zone_id: str | None = None
    direction: CheckpointDirection = CheckpointDirection.IN
    active: bool = True
    allowed_ticket_types: list[str] = Field(default_factory=list)
    required_tags: list[str] = Field(default_factory=list)
    excluded_tags: list[str] = Field(default_factory=list)
    max_entries: int | None = None
    allow_reentry: bool = True
    anti_passback: bool = True
    open_from: AwareDatetime | None = None
    open_until: AwareDatetime | None = None

    def to_policy(self) -> CheckpointPolicy:
        return CheckpointPolicy(
            id=self.id,
            event_id=self.event_id,
            zone_id=self.zone_id,
            direction=self.direction,
            active=self.active,
            allowed_ticket_types=frozenset(self.allowed_ticket_types),
            required_tags=frozenset(self.required_tags),
            excluded_tags=frozenset(self.excluded_tags),
            max_entries=self.max_entries,
            allow_reentry=self.allow_reentry,
            anti_passback=self.anti_passback,
            open_from=self.open_from,
            open_until=self.open_until,
        )


class ZoneState(_Wire):
    """An attendee's presence in one zone (key: zone id, or `cp:<id>` for zoneless checkpoints)."""

    inside: bool = False
    since: AwareDatetime | None = None
    via_checkpoint_id: str | None = None
    entries: int = 0
    last_scan_at: AwareDatetime | None = None


class AttendeeRow(_Wire):
    id: str
    code: str | None = None
    qr: str
    status: AttendeeStatus = AttendeeStatus.VALID
    ticket_type: str
    tags: list[str] = Field(default_factory=list)
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    zones: dict[str, ZoneState] = Field(default_factory=dict)
    checkpoint_entries: dict[str, int] = Field(default_factory=dict)
    deleted: Literal[False] = False

    def to_ticket(self, event_id: str, ticket_type: TicketTypeRow | None) -> Ticket:
        """The rules' view of this attendee; validity narrows to the ticket type's window."""
        valid_from, valid_until = self.valid_from, self.valid_until
        if ticket_type is not None:
            valid_from = _latest(valid_from, ticket_type.valid_from)
            valid_until = _earliest(valid_until, ticket_type.valid_until)
        return Ticket(
            attendee_id=self.id,
            event_id=event_id,
            ticket_type=self.ticket_type,
            status=self.status,
            tags=frozenset(self.tags),
            valid_from=valid_from,
            valid_until=valid_until,
            first_name=self.first_name,
            last_name=self.last_name,
            is_vip=ticket_type.is_vip if ticket_type is not None else False,
        )

    def history(self) -> History:
        zones = {
            key: ZonePresence(z.inside, z.since, z.via_checkpoint_id, z.entries, z.last_scan_at)
            for key, z in self.zones.items()
        }
        return History(zones, dict(self.checkpoint_entries))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


class Tombstone(_Wire):
    id: str
    deleted: Literal[True] = True


class PullPage(_Wire):
    cursor: str
    has_more: bool
    server_time: AwareDatetime
    event: EventRow
    ticket_public_key: str
    ticket_types: list[TicketTypeRow]
    zones: list[ZoneRow]
    checkpoints: list[CheckpointRow]
    attendees: list[AttendeeRow | Tombstone]


class DeviceVerdict(_Wire):
    status: Status
    reason: Reason


class ScanItem(_Wire):
    """One reading a device recorded; `id` is its client UUID and the idempotency key."""

    id: Annotated[str, StringConstraints(min_length=8, max_length=64)]
    event_id: str = Field(max_length=64)
    checkpoint_id: str = Field(max_length=64)
    code: str = Field(max_length=2048)
    direction: Direction = Direction.IN
    scanned_at: AwareDatetime
    hlc: str = Field(max_length=128)
    device_verdict: DeviceVerdict
    operator: str | None = Field(default=None, max_length=200)
    manual: bool = False


class RegistrationItem(_Wire):
    """A walk-in registered at the door; the device admitted it at once."""

    id: Annotated[str, StringConstraints(min_length=8, max_length=64)]
    event_id: str = Field(max_length=64)
    first_name: Name
    last_name: Name
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    ticket_type: str = Field(max_length=64)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    created_at: AwareDatetime
    hlc: str = Field(max_length=128)


class PushRequest(BaseModel):
    """The batch envelope; items stay raw so one bad item is rejected alone, never the batch."""

    model_config = ConfigDict(extra="ignore")

    device_time: AwareDatetime
    scans: list[Any] = Field(default_factory=list, max_length=MAX_BATCH)
    registrations: list[Any] = Field(default_factory=list, max_length=MAX_BATCH)


class ItemStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ServerVerdict(_Wire):
    status: Status
    reason: Reason
    warnings: list[str] = Field(default_factory=list)


class ItemResult(_Wire):
    id: str
    status: ItemStatus
    server_verdict: ServerVerdict | None = None
    conflict_id: str | None = None
    attendee_id: str | None = None
    error: str | None = None


class PushResponse(_Wire):
    server_time: AwareDatetime
    results: list[ItemResult]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _at(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def history_to_state(history: History) -> dict[str, Any]:
    """A JSON-ready form of a history, as the server stores it per attendee and pulls carry it."""
    return {
        "zones": {
            key: {
                "inside": z.inside,
                "since": _iso(z.since),
                "via_checkpoint_id": z.via_checkpoint_id,
                "entries": z.entries,
                "last_scan_at": _iso(z.last_scan_at),
            }
            for key, z in history.zones.items()
        },
        "checkpoint_entries": dict(history.checkpoint_entries),
        "last_by_device": {dev: at.isoformat() for dev, at in history.last_by_device.items()},
    }


def history_from_state(state: dict[str, Any]) -> History:
    """The inverse of `history_to_state` (an empty or missing state is an empty history)."""
    zones = {
        key: ZonePresence(
            bool(z.get("inside")),
            _at(z.get("since")),
            z.get("via_checkpoint_id"),
            int(z.get("entries", 0)),
            _at(z.get("last_scan_at")),
        )
        for key, z in (state.get("zones") or {}).items()
    }
    last = {
        dev: datetime.fromisoformat(at) for dev, at in (state.get("last_by_device") or {}).items()
    }
    return History(zones, dict(state.get("checkpoint_entries") or {}), last)
