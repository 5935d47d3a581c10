"""What a gate shows: plain, immutable values the headless core hands to whoever draws it.

The Flet views and `doorcheck scan --json` render these and nothing else; no view reaches
into SQL, HTTP or the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.denials import DenialDetail

__all__ = [
    "AttendeeSummary",
    "CameraListener",
    "CheckpointChoice",
    "EventChoice",
    "GateConfig",
    "GateStats",
    "GateVerdict",
    "OutboxItem",
    "OverrideRequest",
    "SyncStatus",
]

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class AttendeeSummary:
    id: str
    first_name: str
    last_name: str
    email: str | None
    ticket_type: str | None  # slug
    ticket_type_name: str | None
    tags: tuple[str, ...] = ()
    is_vip: bool = False
    status: str = "valid"
    code: str | None = None
    inside: bool = False

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One reading's outcome at this gate, or a repeat of the verdict on record (a code read
    again within the double-read window: `repeat`, not a reading)."""

    id: str | None  # the reading's UUID; None for a repeat or a duplicate_scan (not recorded)
    code: str
    status: Literal["accepted", "denied"]
    reason: str  # shared.rules.Reason value
    message: str  # the door message for the reason, in English
    warnings: tuple[str, ...]
    attendee: AttendeeSummary | None
    offline: bool  # decided from the cache, not yet confirmed by the server
    scanned_at: datetime
    direction: Direction
    manual: bool = False
    # For already_inside: when and where they went in ("since 21:14 via Gate B").
    inside_since: datetime | None = None
    inside_via: str | None = None
    # SPEC section 11: the verdict on record shown again (same status, reason and detail).
    repeat: bool = False
    # A denial's detail (shared.denials.DenialDetail), checkpoint names filled in.
    detail: DenialDetail | None = None
    # A supervisor's override (SPEC section 11): admitted although the rules denied it.
    override: bool = False
    override_reason: str | None = None  # shared.kinds.OverrideReason value
    overridden_reason: str | None = None  # the denial it lifted (a Reason value)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    def as_json(self) -> dict[str, Any]:
        """The `doorcheck scan --json` verdict line (SPEC section 9)."""
        att = self.attendee
        return {
            "type": "verdict",
            "id": self.id,
            "code": self.code,
            "status": self.status,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "attendee": None
            if att is None
            else {
                "id": att.id,
                "first_name": att.first_name,
                "last_name": att.last_name,
                "ticket_type": att.ticket_type,
            },
            "offline": self.offline,
            "scanned_at": self.scanned_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "repeat": self.repeat,
        }


@dataclass(frozen=True, slots=True)
class SyncStatus:
    paired: bool
    online: bool
    offline_since: datetime | None
    pending: int  # outbox items not yet acknowledged
    last_sync: datetime | None
    last_error: str | None
    revoked: bool = False
    clock_offset_ms: int | None = None
    server_url: str | None = None
    syncing: bool = False
    attendees_cached: int = 0
    problem: str | None = None  # scanner_app.errors.Problem value of the last sync failure
    expired: bool = False  # the chosen event's attendee data was erased (retention passed)
    pin_wanted: bool = False  # the event asks for a door PIN and this gate has none yet
    wiped: str | None = None  # shared.sync.WipeReason of the last wipe, until paired again


@dataclass(frozen=True, slots=True)
class GateStats:
    zone_name: str | None
    occupancy: int
    capacity: int | None
    entries_today: int  # accepted `in` readings at this checkpoint by this device, local day
    exits_today: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: str
    kind: Literal["scan", "registration"]
    summary: str
    created_at: datetime
    attempts: int
    last_error: str | None
    direction: str | None = None  # a scan's: in | out
    status: str | None = None  # a scan's: accepted | denied | warning
    problem: str | None = None  # scanner_app.errors.Problem value of the last failed upload


@dataclass(frozen=True, slots=True)
class CheckpointChoice:
    id: str
    name: str
    direction: str  # in | out | both
    zone_id: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class EventChoice:
    id: str
    name: str
    checkpoints: tuple[CheckpointChoice, ...] = ()
    ticket_types: tuple[tuple[str, str], ...] = ()  # (slug, name)
    timezone: str = "UTC"  # the event's IANA zone: times at the door are shown in it


@dataclass(frozen=True, slots=True)
class GateConfig:
    event_id: str
    checkpoint_id: str
    direction: Direction  # the current direction (operator toggles on `both`)
    operator: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CameraListener:
    """What a window (or the command line) wants from the camera, called on its thread."""

    verdict: Callable[[GateVerdict], None]
    pairing: Callable[[str], None]  # a pairing QR was shown while the device is not paired
    problem: Callable[[str], None]  # the camera stopped or failed


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """`target`: the scanned code or an attendee id (from a search); `reason`: a
    `shared.kinds.OverrideReason` value; `operator`: the supervisor (the gate's operator when
    empty)."""

    target: str
    pin: str
    reason: str
    note: str
    operator: str = ""
