"""What a scanned string is (SPEC section 5), decided once for the gate, the online scan and push:
an attendee's custom code, else a signed `DC1` ticket that verifies against its event's key,
else unknown; and the ticket the rules see for an attendee (validity: the attendee's window
narrowed to its ticket type's).

Lookups are callables the caller backs with its own storage (the gate's cache, a server query,
a batch prefetched for a whole push), so this module reads nothing itself.

    read = read_code(raw)
    found = resolve(read, event_id, lookups)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from shared import ids
from shared.kinds import AttendeeStatus, Reason
from shared.rules import Ticket
from shared.tickets import (
    InvalidSignature,
    MalformedCode,
    TicketPayload,
    decode_ticket,
    is_signed_code,
    normalize_code,
    verify_ticket,
)

__all__ = [
    "EventKey",
    "Lookups",
    "ReadCode",
    "Resolved",
    "ScannedAs",
    "read_code",
    "resolve",
    "status_at",
    "ticket_from_payload",
    "ticket_of",
    "transmittable_code",
    "validity",
]

_KEPT = 600  # what a malformed code keeps for the log and the upload (still malformed there)


class ScannedAs(StrEnum):
    MALFORMED = "malformed"
    CUSTOM = "custom"  # an attendee's own code (any text that is not a DC1 ticket)
    SIGNED = "signed"  # a DC1 ticket that decodes (its signature not checked yet)
    ATTENDEE_ID = "attendee_id"  # a manual check-in names the attendee itself


@dataclass(frozen=True, slots=True)
class ReadCode:
    """A scanned string, cleaned: `code` is the normalized text (or, when malformed, the form
    that is stored and uploaded); `payload` is a decodable DC1 ticket's, unverified."""

    code: str
    kind: ScannedAs
    payload: TicketPayload | None = None


def transmittable_code(raw: str | bytes) -> str:
    """A malformed scan as the log keeps and an upload carries it: short, storable (no NUL, no
    lone surrogate) and still malformed wherever it is read again (control characters stay,
    NUL becomes SUB)."""
    text = raw
    if isinstance(text, bytes | bytearray):
        text = bytes(text[: _KEPT * 4]).decode("utf-8", "replace")
    return "".join(
        "\x1a" if ch == "\x00" else "\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch
        for ch in str(text)[:_KEPT]
    )


def read_code(raw: str | bytes, *, manual: bool = False) -> ReadCode:
    """Clean and classify a scanned string (a manual check-in carries the attendee id)."""
    try:
        code = normalize_code(raw)
    except MalformedCode:
        return ReadCode(transmittable_code(raw), ScannedAs.MALFORMED)
    if manual and code.startswith(f"{ids.ATTENDEE}_"):
        return ReadCode(code, ScannedAs.ATTENDEE_ID)
    if not is_signed_code(code):
        return ReadCode(code, ScannedAs.CUSTOM)
    try:
        return ReadCode(code, ScannedAs.SIGNED, decode_ticket(code).payload)
    except MalformedCode:
        return ReadCode(code, ScannedAs.MALFORMED)


@dataclass(frozen=True, slots=True)
class EventKey:
    """An event's ticket public key (raw Ed25519 bytes), found by the digest a ticket carries."""

    event_id: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Lookups:
    """Where resolution looks; every callable answers only within the scanning organization.

    - `by_code(code)`: (attendee_id, event_id) of the attendees whose custom code is `code`;
    - `event_key(digest)`: the event whose ticket digest this is, with its key;
    - `attendee_event(attendee_id)`: the event of a known attendee, or None;
    - `issued_qr(attendee_id)`: the QR the server issued to that attendee, when known: a code
      identical to it is authentic without checking its signature again.
    """

    by_code: Callable[[str], Sequence[tuple[str, str]]]
    event_key: Callable[[bytes], EventKey | None]
    attendee_event: Callable[[str], str | None]
    issued_qr: Callable[[str], str | None] = lambda _attendee_id: None


@dataclass(frozen=True, slots=True)
class Resolved:
    """The attendee a code names (maybe of another event of the organization) or the error."""

    code: str
    attendee_id: str | None = None
    event_id: str | None = None
    error: Reason | None = None
    payload: TicketPayload | None = None  # set for a signed ticket: what it says of itself


def resolve(read: ReadCode, event_id: str, lookups: Lookups) -> Resolved:
    """SPEC section 5 for a code scanned at `event_id`."""
    code = read.code
    if read.kind is ScannedAs.MALFORMED:
        return Resolved(code, error=Reason.MALFORMED_CODE)
    if read.kind is ScannedAs.ATTENDEE_ID:
        owner = lookups.attendee_event(code)
        if owner is None:
            return Resolved(code, error=Reason.UNKNOWN_CODE)
        return Resolved(code, code, owner)
    if read.kind is ScannedAs.CUSTOM:
        found = sorted(lookups.by_code(code), key=lambda match: match[1] != event_id)
        if not found:
            return Resolved(code, error=Reason.UNKNOWN_CODE)
        return Resolved(code, found[0][0], found[0][1])
    payload = read.payload
    assert payload is not None
    key = lookups.event_key(payload.event_digest)
    if key is None:
        return Resolved(code, error=Reason.INVALID_SIGNATURE)
    if lookups.issued_qr(payload.attendee_id) != code:
        try:
            verify_ticket(code, key.public_key)
        except InvalidSignature:
            return Resolved(code, error=Reason.INVALID_SIGNATURE)
        except MalformedCode:
            return Resolved(code, error=Reason.MALFORMED_CODE)
    return Resolved(code, payload.attendee_id, key.event_id, payload=payload)


# -- the ticket the rules see ---------------------------------------------------------------------
def validity(
    valid_from: datetime | None,
    valid_until: datetime | None,
    type_from: datetime | None,
    type_until: datetime | None,
) -> tuple[datetime | None, datetime | None]:
    """A ticket's window: the attendee's own narrowed to its ticket type's (bounds inclusive)."""
    starts = [t for t in (valid_from, type_from) if t is not None]
    ends = [t for t in (valid_until, type_until) if t is not None]
    return max(starts, default=None), min(ends, default=None)


def ticket_of(
    *,
    attendee_id: str,
    event_id: str,
    status: str,
    tags: Iterable[str],
    window: tuple[datetime | None, datetime | None],
    ticket_type: str,
    type_window: tuple[datetime | None, datetime | None] = (None, None),
    is_vip: bool = False,
    names: tuple[str, str] = ("", ""),
) -> Ticket:
    """The rules' view of a stored attendee (an unknown status counts as revoked)."""
    try:
        state = AttendeeStatus(status)
    except ValueError:
        state = AttendeeStatus.REVOKED
    valid_from, valid_until = validity(*window, *type_window)
    return Ticket(
        attendee_id=attendee_id,
        event_id=event_id,
        ticket_type=ticket_type,
        status=state,
        tags=frozenset(tags),
        valid_from=valid_from,
        valid_until=valid_until,
        first_name=names[0],
        last_name=names[1],
        is_vip=is_vip,
    )


def _epoch(value: int | None) -> datetime | None:
    return None if not value else datetime.fromtimestamp(value, UTC)


def ticket_from_payload(
    payload: TicketPayload, event_id: str, ticket_type: str | None, *, is_vip: bool = False
) -> Ticket:
    """A verified signed ticket whose attendee is not known here yet: it says who and what it
    is itself (`ticket_type` is the slug of its type number, when known)."""
    return Ticket(
        attendee_id=payload.attendee_id,
        event_id=event_id,
        ticket_type=ticket_type or f"#{payload.ticket_type_number}",
        valid_from=_epoch(payload.valid_from),
        valid_until=_epoch(payload.valid_until),
        is_vip=is_vip,
    )


def status_at(ticket: Ticket, changed_at: datetime | None, at: datetime) -> Ticket:
    """The ticket as it was at `at`: a ticket cancelled or revoked only after a reading was still
    valid for it."""
    if ticket.status is not AttendeeStatus.VALID and changed_at is not None and changed_at > at:
        return replace(ticket, status=AttendeeStatus.VALID)
    return ticket
