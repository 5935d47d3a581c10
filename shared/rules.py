"""The check-in rules: one pure `decide` used by the scanner offline, the online scan endpoint and
server reconciliation. Inputs are frozen values; the verdict is a value, never an exception.

The vocabulary (`shared.kinds`), checkpoint policies (`shared.policy`) and the history fold
(`shared.history`) are re-exported here: `from shared.rules import ...` is the rules' whole face.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from shared.denials import DenialDetail, accepting_checkpoints, short_code
from shared.history import History, Reading, SeenVerdict, ZonePresence, occupancy_change, replay
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
    "DenialDetail",
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
    "repeated",
    "replay",
    "within_window",
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
    """Everything one decision needs; `code_error` is set when the code resolved to no ticket.
    `code` (the scanned text) and `checkpoints` (the event's checkpoints) only feed a denial's
    detail: the code shortened, and where a refused ticket type is accepted."""

    checkpoint: CheckpointPolicy
    now: datetime
    direction: Direction = Direction.IN
    ticket: Ticket | None = None
    code_error: Reason | None = None
    history: History = field(default_factory=History)
    zone: ZoneOccupancy | None = None
    device_id: str | None = None
    code: str = ""
    checkpoints: tuple[CheckpointPolicy, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one scan. `record` is false for a repeat within the double-read window
    (`repeat`: the verdict on record shown again, not a new reading); `occupancy_delta` is what
    the reading adds to its zone (`zone_id`) when it is not voided; `detail` is a denial's
    (`shared.denials.DenialDetail`); `override` marks a supervisor's admission."""

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
    detail: DenialDetail | None = None
    repeat: bool = False
    override: bool = False  # a supervisor let a denied guest in (`shared.override`)
    overridden: Reason | None = None  # the denial an override lifted

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    @property
    def message(self) -> str:
        return REASON_MESSAGES[self.reason]

    def as_reading(self, checkpoint_id: str, at: datetime, device_id: str | None) -> Reading:
        """The history entry this verdict leaves behind (callers check `record` first)."""
        return Reading(
            checkpoint_id, self.zone_id, self.direction, self.status, at, device_id, self.reason
        )


def within_window(last: datetime | None, now: datetime) -> bool:
    """Whether a reading at `now` is a double read of one at `last` (SPEC section 11)."""
    return last is not None and timedelta(0) <= now - last < DUPLICATE_WINDOW


def repeated(verdict: Verdict) -> Verdict:
    """A verdict on record shown again: same status, reason and detail, not a new reading."""
    return replace(verdict, record=False, repeat=True, occupancy_delta=0)


def _detail(scan: ScanInput, reason: Reason) -> DenialDetail:
    ticket, checkpoint, history = scan.ticket, scan.checkpoint, scan.history
    detail = DenialDetail(code=short_code(scan.code))
    if ticket is None:
        return detail
    detail = replace(detail, name=f"{ticket.first_name} {ticket.last_name}".strip())
    presence = history.presence(zone_key(checkpoint))
    if reason is Reason.ALREADY_INSIDE:
        return replace(
            detail, inside_since=presence.since, via_checkpoint_id=presence.via_checkpoint_id
        )
    if reason is Reason.MAX_ENTRIES_REACHED:
        return replace(
            detail,
            entries_used=history.checkpoint_entries.get(checkpoint.id, 0),
            entries_allowed=checkpoint.max_entries,
            last_entry_at=history.last_entries.get(checkpoint.id),
        )
    if reason is Reason.REENTRY_NOT_ALLOWED:
        last = history.last_entries.get(checkpoint.id) or max(
            history.last_entries.values(), default=None
        )
        return replace(detail, entries_used=presence.entries, last_entry_at=last)
    if reason is Reason.ZONE_FULL and scan.zone is not None:
        return replace(detail, occupancy=scan.zone.occupancy, capacity=scan.zone.capacity)
    if reason is Reason.TICKET_TYPE_NOT_ALLOWED:
        accepted = accepting_checkpoints(
            ticket.ticket_type, scan.checkpoints, besides=checkpoint.id
        )
        return replace(detail, ticket_type=ticket.ticket_type, accepted_at=accepted)
    if reason in (Reason.NOT_YET_VALID, Reason.EXPIRED):
        return replace(detail, valid_from=ticket.valid_from, valid_until=ticket.valid_until)
    if reason is Reason.CHECKPOINT_CLOSED:
        return replace(detail, opens_at=checkpoint.open_from, closes_at=checkpoint.open_until)
    return detail


def _deny(scan: ScanInput, reason: Reason, *, record: bool = True) -> Verdict:
    attendee = AttendeeSummary.of(scan.ticket) if scan.ticket is not None else None
    detail = _detail(scan, reason)
    return Verdict(
        Status.DENIED,
        reason,
        scan.direction,
        attendee=attendee,
        zone_id=scan.checkpoint.zone_id,
        record=record,
        inside_since=detail.inside_since,
        via_checkpoint_id=detail.via_checkpoint_id,
        detail=detail,
    )


def _last_seen(scan: ScanInput) -> tuple[bool, SeenVerdict | None]:
    """Whether this is a double read (this device read the attendee within the window, here and
    the same way, or in a way not known), and the verdict it had then when known."""
    if scan.device_id is None:
        return False, None
    if not within_window(scan.history.last_by_device.get(scan.device_id), scan.now):
        return False, None
    seen = scan.history.last_verdicts.get(scan.device_id)
    if seen is None:
        return True, None
    here = seen.checkpoint_id == scan.checkpoint.id and seen.direction is scan.direction
    return (True, seen) if here else (False, None)


def _repeat(scan: ScanInput, seen: SeenVerdict) -> Verdict:
    """The verdict on record again (SPEC section 11), its detail as things stand now."""
    assert scan.ticket is not None
    if seen.status is Status.DENIED:
        return repeated(_deny(scan, seen.reason))
    return Verdict(
        Status.ACCEPTED,
        seen.reason,
        scan.direction,
        attendee=AttendeeSummary.of(scan.ticket),
        zone_id=scan.checkpoint.zone_id,
        record=False,
        repeat=True,
    )


def _is_duplicate(scan: ScanInput) -> bool:
    """A double read whose verdict is not known (a history stored before verdicts were kept, a
    reading pushed from a device): `duplicate_scan`."""
    return _last_seen(scan)[0]


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
    double, seen = _last_seen(scan)
    if double and seen is not None:
        return _repeat(scan, seen)
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
        return _deny(scan, Reason.ALREADY_INSIDE)
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
