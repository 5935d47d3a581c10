"""The check-in rules: one pure `decide` used by the scanner offline, the online scan endpoint and
server reconciliation. Inputs are frozen values; the verdict is a value, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "DUPLICATE_WINDOW",
    "REASON_MESSAGES",
    "AttendeeStatus",
    "AttendeeSummary",
    "CheckpointDirection",
    "CheckpointPolicy",
    "Direction",
    "History",
    "Reading",
    "Reason",
    "ScanInput",
    "Status",
    "Ticket",
    "Verdict",
    "VerdictWarning",
    "ZoneOccupancy",
    "ZonePresence",
    "decide",
    "effective_direction",
    "replay",
    "replay_with_deltas",
    "zone_key",
]

DUPLICATE_WINDOW = timedelta(seconds=3)


class Reason(StrEnum):
    """Why a verdict is what it is, in the order the rules check them (a public contract)."""

    MALFORMED_CODE = "malformed_code"
    INVALID_SIGNATURE = "invalid_signature"
    UNKNOWN_CODE = "unknown_code"
    WRONG_EVENT = "wrong_event"
    CHECKPOINT_INACTIVE = "checkpoint_inactive"
    CHECKPOINT_CLOSED = "checkpoint_closed"
    CANCELLED = "cancelled"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    TICKET_TYPE_NOT_ALLOWED = "ticket_type_not_allowed"
    TAG_REQUIRED = "tag_required"
    TAG_EXCLUDED = "tag_excluded"
    DUPLICATE_SCAN = "duplicate_scan"
    ALREADY_INSIDE = "already_inside"
    REENTRY_NOT_ALLOWED = "reentry_not_allowed"
    MAX_ENTRIES_REACHED = "max_entries_reached"
    ZONE_FULL = "zone_full"
    OK = "ok"


REASON_MESSAGES: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.MALFORMED_CODE: "Not a ticket code",
        Reason.INVALID_SIGNATURE: "Forged or damaged ticket",
        Reason.UNKNOWN_CODE: "Ticket not found",
        Reason.WRONG_EVENT: "Ticket for another event",
        Reason.CHECKPOINT_INACTIVE: "This gate is not active",
        Reason.CHECKPOINT_CLOSED: "This gate is closed now",
        Reason.CANCELLED: "Ticket cancelled",
        Reason.REVOKED: "Ticket revoked",
        Reason.NOT_YET_VALID: "Ticket not valid yet",
        Reason.EXPIRED: "Ticket expired",
        Reason.TICKET_TYPE_NOT_ALLOWED: "Ticket type not allowed here",
        Reason.TAG_REQUIRED: "Missing a required pass",
        Reason.TAG_EXCLUDED: "Not allowed here",
        Reason.DUPLICATE_SCAN: "Just scanned",
        Reason.ALREADY_INSIDE: "Already inside",
        Reason.REENTRY_NOT_ALLOWED: "No re-entry",
        Reason.MAX_ENTRIES_REACHED: "No entries left",
        Reason.ZONE_FULL: "Zone full",
        Reason.OK: "Welcome",
    }
)

# Reasons decided from the scanned code alone, before any attendee is known.
CODE_REASONS = frozenset({Reason.MALFORMED_CODE, Reason.INVALID_SIGNATURE, Reason.UNKNOWN_CODE})


class Status(StrEnum):
    ACCEPTED = "accepted"
    DENIED = "denied"


class VerdictWarning(StrEnum):
    NOT_INSIDE = "not_inside"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class CheckpointDirection(StrEnum):
    IN = "in"
    OUT = "out"
    BOTH = "both"


class AttendeeStatus(StrEnum):
    VALID = "valid"
    CANCELLED = "cancelled"
    REVOKED = "revoked"


def effective_direction(checkpoint: CheckpointDirection, requested: Direction | None) -> Direction:
    """The direction a scan counts in: a fixed gate's own, or the operator's pick at a `both` gate.

    >>> effective_direction(CheckpointDirection.BOTH, Direction.OUT)
    <Direction.OUT: 'out'>
    """
    if checkpoint is CheckpointDirection.BOTH:
        return requested or Direction.IN
    fixed = Direction(checkpoint.value)
    if requested is not None and requested is not fixed:
        raise ValueError(f"this checkpoint only scans {fixed.value}")
    return fixed


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """A checkpoint's rules (SPEC section 6); windows are aware instants."""

    id: str
    event_id: str
    zone_id: str | None = None
    direction: CheckpointDirection = CheckpointDirection.IN
    active: bool = True
    allowed_ticket_types: frozenset[str] = frozenset()
    required_tags: frozenset[str] = frozenset()
    excluded_tags: frozenset[str] = frozenset()
    max_entries: int | None = None
    allow_reentry: bool = True
    anti_passback: bool = True
    open_from: datetime | None = None
    open_until: datetime | None = None


def zone_key(checkpoint: CheckpointPolicy) -> str:
    """Where presence is tracked: the checkpoint's zone, or the checkpoint itself when zoneless."""
    return checkpoint.zone_id or f"cp:{checkpoint.id}"


@dataclass(frozen=True, slots=True)
class Ticket:
    """The attendee behind a resolved code; validity is the attendee's and ticket type's overlap."""

    attendee_id: str
    event_id: str
    ticket_type: str
    status: AttendeeStatus = AttendeeStatus.VALID
    tags: frozenset[str] = frozenset()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    first_name: str = ""
    last_name: str = ""
    is_vip: bool = False


@dataclass(frozen=True, slots=True)
class AttendeeSummary:
    id: str
    first_name: str
    last_name: str
    ticket_type: str
    is_vip: bool
    tags: tuple[str, ...]

    @classmethod
    def of(cls, ticket: Ticket) -> AttendeeSummary:
        return cls(
            ticket.attendee_id,
            ticket.first_name,
            ticket.last_name,
            ticket.ticket_type,
            ticket.is_vip,
            tuple(sorted(ticket.tags)),
        )


@dataclass(frozen=True, slots=True)
class ZonePresence:
    """An attendee's state in one zone: inside or not, since when and through which checkpoint."""

    inside: bool = False
    since: datetime | None = None
    via_checkpoint_id: str | None = None
    entries: int = 0
    last_scan_at: datetime | None = None


_NOWHERE = ZonePresence()
_EMPTY: Mapping[str, ZonePresence] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reading:
    """One recorded reading of an attendee, as the history fold consumes it."""

    checkpoint_id: str
    zone: str
    direction: Direction
    status: Status
    scanned_at: datetime
    device_id: str | None = None
    occupancy_delta: int = 0


@dataclass(frozen=True, slots=True)
class History:
    """What the rules need to know of an attendee's past readings, folded from them in order."""

    zones: Mapping[str, ZonePresence] = field(default_factory=lambda: _EMPTY)
    checkpoint_entries: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    last_by_device: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))

    def presence(self, zone: str) -> ZonePresence:
        return self.zones.get(zone, _NOWHERE)

    def apply(self, reading: Reading) -> History:
        """The history after one more reading (denied readings only feed the debounce)."""
        last_by_device = self.last_by_device
        if reading.device_id is not None:
            last_by_device = {**last_by_device, reading.device_id: reading.scanned_at}
        if reading.status is not Status.ACCEPTED:
            return replace(self, last_by_device=last_by_device)
        before = self.presence(reading.zone)
        entries = dict(self.checkpoint_entries)
        if reading.direction is Direction.IN:
            entries[reading.checkpoint_id] = entries.get(reading.checkpoint_id, 0) + 1
            after = ZonePresence(
                True,
                reading.scanned_at,
                reading.checkpoint_id,
                before.entries + 1,
                reading.scanned_at,
            )
        else:
            after = ZonePresence(
                False, reading.scanned_at, reading.checkpoint_id, before.entries, reading.scanned_at
            )
        return History({**self.zones, reading.zone: after}, entries, last_by_device)


def replay(readings: Iterable[Reading]) -> History:
    """Fold readings (in the order they happened) into a history."""
    history = History()
    for reading in readings:
        history = history.apply(reading)
    return history


def replay_with_deltas(readings: Iterable[Reading]) -> tuple[History, list[int]]:
    """Fold readings in order and say what each adds to its zone's occupancy.

    An accepted entry adds one, an accepted exit of someone inside removes one, anything else
    (denied, zoneless `cp:` presence, an exit of someone not inside) adds nothing. The server uses
    it to re-decide an attendee's timeline when an offline reading arrives late or is voided.
    """
    history = History()
    deltas: list[int] = []
    for reading in readings:
        delta = 0
        if reading.status is Status.ACCEPTED and not reading.zone.startswith("cp:"):
            if reading.direction is Direction.IN:
                delta = 1
            elif history.presence(reading.zone).inside:
                delta = -1
        deltas.append(delta)
        history = history.apply(reading)
    return history, deltas


@dataclass(frozen=True, slots=True)
class ZoneOccupancy:
    capacity: int | None
    occupancy: int

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.occupancy >= self.capacity


@dataclass(frozen=True, slots=True)
class ScanInput:
    """Everything one decision needs; `code_error` is set when the code resolved to no ticket."""

    checkpoint: CheckpointPolicy
    now: datetime
    direction: Direction = Direction.IN
    ticket: Ticket | None = None
    code_error: Reason | None = None
    history: History = field(default_factory=History)
    zone: ZoneOccupancy | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one scan. `record` is false for a debounced repeat (not a new reading);
    `occupancy_delta` is what the reading adds to its zone when it is not voided."""

    status: Status
    reason: Reason
    direction: Direction
    warnings: tuple[VerdictWarning, ...] = ()
    attendee: AttendeeSummary | None = None
    zone: str | None = None
    occupancy_delta: int = 0
    record: bool = True
    inside_since: datetime | None = None
    via_checkpoint_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    @property
    def message(self) -> str:
        return REASON_MESSAGES[self.reason]

    def as_reading(
        self, checkpoint_id: str, scanned_at: datetime, device_id: str | None
    ) -> Reading:
        """The history entry this verdict leaves behind (callers check `record` first)."""
        return Reading(
            checkpoint_id,
            self.zone or f"cp:{checkpoint_id}",
            self.direction,
            self.status,
            scanned_at,
            device_id,
            self.occupancy_delta,
        )


def _deny(
    scan: ScanInput,
    reason: Reason,
    *,
    record: bool = True,
    inside_since: datetime | None = None,
    via_checkpoint_id: str | None = None,
) -> Verdict:
    attendee = AttendeeSummary.of(scan.ticket) if scan.ticket is not None else None
    return Verdict(
        Status.DENIED,
        reason,
        scan.direction,
        attendee=attendee,
        zone=zone_key(scan.checkpoint),
        record=record,
        inside_since=inside_since,
        via_checkpoint_id=via_checkpoint_id,
    )


def _is_duplicate(scan: ScanInput) -> bool:
    if scan.device_id is None:
        return False
    last = scan.history.last_by_device.get(scan.device_id)
    return last is not None and timedelta(0) <= scan.now - last < DUPLICATE_WINDOW


def decide(scan: ScanInput) -> Verdict:
    """Apply SPEC section 6's rules in their order and return the verdict.

    >>> from datetime import UTC
    >>> cp = CheckpointPolicy("cp_1", "evt_1", zone_id="zone_1")
    >>> t = Ticket("att_1", "evt_1", "general")
    >>> decide(ScanInput(cp, datetime(2026, 5, 1, tzinfo=UTC), ticket=t)).reason
    <Reason.OK: 'ok'>
    """
    if scan.now.tzinfo is None:
        raise ValueError("decide needs an aware `now`")
    checkpoint, ticket, now = scan.checkpoint, scan.ticket, scan.now
    if ticket is None:
        reason = scan.code_error if scan.code_error in CODE_REASONS else Reason.UNKNOWN_CODE
        return _deny(scan, reason)
    if ticket.event_id != checkpoint.event_id:
        return _deny(scan, Reason.WRONG_EVENT)
    if not checkpoint.active:
        return _deny(scan, Reason.CHECKPOINT_INACTIVE)
    key = zone_key(checkpoint)
    presence = scan.history.presence(key)
    if scan.direction is Direction.OUT:
        return _exit(scan, presence)
    if (checkpoint.open_from is not None and now < checkpoint.open_from) or (
        checkpoint.open_until is not None and now > checkpoint.open_until
    ):
        return _deny(scan, Reason.CHECKPOINT_CLOSED)
    if ticket.status is AttendeeStatus.CANCELLED:
        return _deny(scan, Reason.CANCELLED)
    if ticket.status is AttendeeStatus.REVOKED:
        return _deny(scan, Reason.REVOKED)
    if ticket.valid_from is not None and now < ticket.valid_from:
        return _deny(scan, Reason.NOT_YET_VALID)
    if ticket.valid_until is not None and now > ticket.valid_until:
        return _deny(scan, Reason.EXPIRED)
    if (
        checkpoint.allowed_ticket_types
        and ticket.ticket_type not in checkpoint.allowed_ticket_types
    ):
        return _deny(scan, Reason.TICKET_TYPE_NOT_ALLOWED)
    if checkpoint.required_tags and not (checkpoint.required_tags & ticket.tags):
        return _deny(scan, Reason.TAG_REQUIRED)
    if checkpoint.excluded_tags & ticket.tags:
        return _deny(scan, Reason.TAG_EXCLUDED)
    if _is_duplicate(scan):
        return _deny(scan, Reason.DUPLICATE_SCAN, record=False)
    if checkpoint.anti_passback and presence.inside:
        return _deny(
            scan,
            Reason.ALREADY_INSIDE,
            inside_since=presence.since,
            via_checkpoint_id=presence.via_checkpoint_id,
        )
    if not checkpoint.allow_reentry and presence.entries > 0:
        return _deny(scan, Reason.REENTRY_NOT_ALLOWED)
    if (
        checkpoint.max_entries is not None
        and scan.history.checkpoint_entries.get(checkpoint.id, 0) >= checkpoint.max_entries
    ):
        return _deny(scan, Reason.MAX_ENTRIES_REACHED)
    if scan.zone is not None and scan.zone.full:
        return _deny(scan, Reason.ZONE_FULL)
    return Verdict(
        Status.ACCEPTED,
        Reason.OK,
        Direction.IN,
        attendee=AttendeeSummary.of(ticket),
        zone=key,
        occupancy_delta=1 if checkpoint.zone_id else 0,
    )


def _exit(scan: ScanInput, presence: ZonePresence) -> Verdict:
    """Exits are always let through; leaving a zone one was not seen entering warns and counts 0."""
    assert scan.ticket is not None
    if _is_duplicate(scan):
        return _deny(scan, Reason.DUPLICATE_SCAN, record=False)
    counts = presence.inside and scan.checkpoint.zone_id is not None
    return Verdict(
        Status.ACCEPTED,
        Reason.OK,
        Direction.OUT,
        warnings=() if presence.inside else (VerdictWarning.NOT_INSIDE,),
        attendee=AttendeeSummary.of(scan.ticket),
        zone=zone_key(scan.checkpoint),
        occupancy_delta=-1 if counts else 0,
    )
