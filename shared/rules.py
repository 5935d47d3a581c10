"""The check-in rules: one pure `decide` used by the scanner offline, the online scan endpoint and
server reconciliation. Inputs are frozen values; the verdict is a value, never an exception.

The vocabulary (`shared.kinds`), checkpoint policies (`shared.policy`) and the history fold
(`shared.history`) are re-exported here: `from shared.rules import ...` is the rules' whole face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.history import History, Reading, ZonePresence, occupancy_change, replay
from shared.kinds import (
    CODE_REASONS,
    HISTORY_REASONS,
    REASON_MESSAGES,
    AttendeeStatus,
    CheckpointDirection,
    Direction,
    Reason,
    Status,
    VerdictWarning,
)
from shared.policy import (
    CheckpointPolicy,
    WrongDirection,
    ZoneOccupancy,
    checkpoint_policy,
    effective_direction,
    presence_key,
    zone_filled,
    zone_key,
)

__all__ = [
    "CODE_REASONS",
    "DUPLICATE_WINDOW",
    "HISTORY_REASONS",
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
    "WrongDirection",
    "ZoneOccupancy",
    "ZonePresence",
    "checkpoint_policy",
    "decide",
    "effective_direction",
    "occupancy_change",
    "presence_key",
    "replay",
    "zone_filled",
    "zone_key",
]

DUPLICATE_WINDOW = timedelta(seconds=3)


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
    `occupancy_delta` is what the reading adds to its zone (`zone_id`) when it is not voided."""

    status: Status
    reason: Reason
    direction: Direction
    warnings: tuple[VerdictWarning, ...] = ()
    attendee: AttendeeSummary | None = None
    zone_id: str | None = None
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

    def as_reading(self, checkpoint_id: str, at: datetime, device_id: str | None) -> Reading:
        """The history entry this verdict leaves behind (callers check `record` first)."""
        return Reading(checkpoint_id, self.zone_id, self.direction, self.status, at, device_id)


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
        zone_id=scan.checkpoint.zone_id,
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
    presence = scan.history.presence(presence_key(checkpoint.id, checkpoint.zone_id))
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
        zone_id=checkpoint.zone_id,
        occupancy_delta=occupancy_change(True, Direction.IN, checkpoint.zone_id, presence.inside),
    )


def _exit(scan: ScanInput, presence: ZonePresence) -> Verdict:
    """Exits are always let through; leaving a zone one was not seen entering warns and counts 0."""
    assert scan.ticket is not None
    if _is_duplicate(scan):
        return _deny(scan, Reason.DUPLICATE_SCAN, record=False)
    return Verdict(
        Status.ACCEPTED,
        Reason.OK,
        Direction.OUT,
        warnings=() if presence.inside else (VerdictWarning.NOT_INSIDE,),
        attendee=AttendeeSummary.of(scan.ticket),
        zone_id=scan.checkpoint.zone_id,
        occupancy_delta=occupancy_change(
            True, Direction.OUT, scan.checkpoint.zone_id, presence.inside
        ),
    )
