"""The closed vocabularies of check-in: verdict reasons (a public contract: add, never rename),
statuses, directions and attendee states, with the door's English words for each reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CODE_REASONS",
    "HISTORY_REASONS",
    "OVERRIDE_REASON_MESSAGES",
    "REASON_MESSAGES",
    "AttendeeStatus",
    "CheckpointDirection",
    "Direction",
    "OverrideReason",
    "Reason",
    "Status",
    "VerdictWarning",
]


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
        Reason.MALFORMED_CODE: "Not a ticket",
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

# Reasons that depend on the attendee's earlier readings: a reading that arrives late (another
# gate was offline) can turn an admission already recorded into one of these.
HISTORY_REASONS = frozenset(
    {Reason.ALREADY_INSIDE, Reason.REENTRY_NOT_ALLOWED, Reason.MAX_ENTRIES_REACHED}
)


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


class OverrideReason(StrEnum):
    """Why a supervisor let a denied guest in (SPEC section 11; a public contract: add, never
    rename). A note says the rest."""

    VIP = "vip"
    STAFF_DECISION = "staff_decision"
    TICKET_PROBLEM = "ticket_problem"
    OTHER = "other"


OVERRIDE_REASON_MESSAGES: Mapping[OverrideReason, str] = MappingProxyType(
    {
        OverrideReason.VIP: "VIP or guest of the organizer",
        OverrideReason.STAFF_DECISION: "Staff decision",
        OverrideReason.TICKET_PROBLEM: "Problem with the ticket",
        OverrideReason.OTHER: "Other (see note)",
    }
)
