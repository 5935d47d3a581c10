"""Sync conflicts as both ends name them: the kinds (a denial reason, or a walk-in whose email
exists), their states, and which resolutions each kind takes (SPEC section 7).
"""

from __future__ import annotations

from enum import StrEnum

from shared.kinds import Reason

__all__ = [
    "AUTO_RESOLVER",
    "DUPLICATE_REGISTRATION",
    "ConflictStatus",
    "Resolution",
    "kind_of",
    "resolutions_for",
]

# A conflict's kind is the reason the server denies the admission (`already_inside`, `revoked`,
# `zone_full`, ...) or this one, for a door registration whose email is already registered.
DUPLICATE_REGISTRATION = "duplicate_registration"

# Who resolved a conflict that a later upload explained (an exit at another gate arrived late).
AUTO_RESOLVER = "doorcheck (a later upload explained it)"


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    ACCEPT = "accept"
    VOID_SCAN = "void_scan"
    REVOKE_TICKET = "revoke_ticket"
    MERGE = "merge"


_FOR_READINGS = (Resolution.ACCEPT, Resolution.VOID_SCAN, Resolution.REVOKE_TICKET)
_FOR_REGISTRATIONS = (Resolution.MERGE, Resolution.ACCEPT)


def resolutions_for(kind: str) -> tuple[Resolution, ...]:
    """The resolutions that make sense for a conflict kind, the usual one first.

    >>> [r.value for r in resolutions_for("duplicate_registration")]
    ['merge', 'accept']
    """
    return _FOR_REGISTRATIONS if kind == DUPLICATE_REGISTRATION else _FOR_READINGS


def kind_of(reason: Reason) -> str:
    """The kind of the conflict an admission denied for `reason` opens."""
    return reason.value
