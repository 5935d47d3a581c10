"""Supervisor override (SPEC section 11): the event's override PIN as it is stored (salted scrypt,
its parameters in the string) and checked offline on a gate, the reason and note an override
needs, how long a gate waits after wrong PINs, and the admission an override records.

    stored = hash_pin("2468", os.urandom(16))        # the server, when an organizer sets it
    verify_pin("2468", stored)                       # a gate, offline
    admitted = admit_anyway(scan, decide(scan))      # the denial lifted
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import timedelta

from shared.history import occupancy_change
from shared.kinds import CODE_REASONS, Direction, OverrideReason, Reason, Status
from shared.policy import zone_key
from shared.rules import ScanInput, Verdict

__all__ = [
    "FREE_TRIES",
    "MAX_NOTE",
    "PIN_PATTERN",
    "OverrideInvalid",
    "admit_anyway",
    "can_override",
    "clean_note",
    "hash_pin",
    "override_reason",
    "valid_pin",
    "verify_pin",
    "wrong_pin_delay",
]

PIN_PATTERN = r"^[0-9]{4,12}$"
MAX_NOTE = 1000
FREE_TRIES = 3  # wrong PINs a gate takes before it makes the next try wait
MAX_DELAY = timedelta(minutes=5)
_PIN = re.compile(PIN_PATTERN)
_SCHEME = "scrypt"
# 2^14 x 8 x 1: 16 MiB and ~40 ms on the standard machine, on a phone a few times that.
_N, _R, _P = 1 << 14, 8, 1
_MAX_N, _MAX_R, _MAX_P = 1 << 17, 16, 4  # what a gate computes for a stored hash, at most
_KEY = 32
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class OverrideInvalid(ValueError):
    """An override request that cannot be: `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def valid_pin(pin: object) -> bool:
    """An override PIN is 4 to 12 ASCII digits."""
    return isinstance(pin, str) and _PIN.fullmatch(pin) is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, salt: bytes) -> str:
    """`scrypt$<n>$<r>$<p>$<salt>$<key>` (base64) of a valid PIN; `salt`: 16 random bytes."""
    if not valid_pin(pin):
        raise OverrideInvalid("override_pin", "an override PIN is 4 to 12 digits")
    if len(salt) < 16:
        raise ValueError("the salt is at least 16 random bytes")
    key = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_pin(pin: str, stored: str | None) -> bool:
    """Whether `pin` is the one `stored` was made from (False for no hash, a hash this version
    cannot read, or parameters beyond what a gate computes)."""
    if not stored or not valid_pin(pin):
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return False
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return False
    if len(key) != _KEY or not salt:
        return False
    found = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=_KEY, maxmem=1 << 27)
    return hmac.compare_digest(found, key)


def wrong_pin_delay(failures: int) -> timedelta:
    """How long a gate waits before the next try after `failures` wrong PINs in a row: none for
    the first three, then 1, 2, 4 … seconds, at most five minutes.

    >>> [wrong_pin_delay(n).seconds for n in (2, 3, 4, 5, 30)]
    [0, 1, 2, 4, 300]
    """
    if failures < FREE_TRIES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE_TRIES, 20)), MAX_DELAY)


def override_reason(value: object) -> OverrideReason:
    """The reason of the closed list, or `OverrideInvalid`."""
    if isinstance(value, str) and value in {r.value for r in OverrideReason}:
        return OverrideReason(value)
    choices = ", ".join(r.value for r in OverrideReason)
    raise OverrideInvalid("reason", f"the reason is one of {choices}")


def clean_note(note: object) -> str:
    """The note trimmed; `OverrideInvalid` when empty, longer than 1000 characters or holding
    control characters (newlines and tabs are fine)."""
    if not isinstance(note, str):
        raise OverrideInvalid("note", "the note is text")
    text = note.strip()
    if not text:
        raise OverrideInvalid("note", "a note is required: say why the guest is let in")
    if len(text) > MAX_NOTE:
        raise OverrideInvalid("note", f"the note is at most {MAX_NOTE} characters")
    if _UNSTORABLE.search(text):
        raise OverrideInvalid("note", "the note may not hold control characters")
    return text


def can_override(verdict: Verdict) -> bool:
    """Only the denied entry of a known ticket of this event can be overridden (a code that
    names nobody, or a ticket of another event, cannot)."""
    return (
        verdict.status is Status.DENIED
        and verdict.direction is Direction.IN
        and verdict.attendee is not None
        and verdict.reason not in CODE_REASONS
        and verdict.reason is not Reason.WRONG_EVENT
    )


def admit_anyway(scan: ScanInput, denied: Verdict) -> Verdict:
    """The admission a supervisor's override records for `denied` (see `can_override`): an
    entry that counts like any other, marked `override`, naming the denial it lifted."""
    if not can_override(denied):
        raise OverrideInvalid("code", "only a denied entry of a known ticket can be overridden")
    inside = scan.history.presence(zone_key(scan.checkpoint)).inside
    zone_id = scan.checkpoint.zone_id
    return Verdict(
        Status.ACCEPTED,
        Reason.OK,
        Direction.IN,
        attendee=denied.attendee,
        zone_id=zone_id,
        occupancy_delta=occupancy_change(True, Direction.IN, zone_id, inside),
        override=True,
        overridden=denied.reason,
    )
