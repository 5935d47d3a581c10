"""Why a gate operation could not run, as codes: the app chooses its words by `code`, never by
reading a message (messages are English sentences for logs and the command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "FieldProblem",
    "GateError",
    "OverrideRefused",
    "PairingError",
    "Problem",
    "WalkinInvalid",
]


class Problem(StrEnum):
    NOT_PAIRED = "not_paired"
    NOT_CONFIGURED = "not_configured"
    REVOKED = "revoked"
    UNKNOWN_CHECKPOINT = "unknown_checkpoint"
    BAD_SERVER_URL = "bad_server_url"
    NO_ENROLMENT_CODE = "no_enrolment_code"
    ENROLMENT_REFUSED = "enrolment_refused"
    NOT_A_PAIRING_LINK = "not_a_pairing_link"
    WALKIN_INVALID = "walkin_invalid"
    NOT_ADMIN = "not_admin"
    # talking to the server
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    UNAUTHORIZED = "unauthorized"
    REFUSED = "refused"
    MUST_REFETCH = "must_refetch"
    # the gate's own data
    LOCKED = "locked"  # the data key is not available yet: the door PIN is needed
    PIN_REQUIRED = "pin_required"  # no secure storage here, or the event asks for a PIN
    PIN_INVALID = "pin_invalid"
    PIN_WRONG = "pin_wrong"
    WIPED = "wiped"  # erased: by the organizer, by 10 wrong PINs, or revoked
    EXPIRED = "expired"  # the attendee data outlived the event's retention
    # a supervisor's override (scanner_app.override)
    OVERRIDE_UNAVAILABLE = "override_unavailable"  # the event has no override PIN
    OVERRIDE_INVALID = "override_invalid"  # the reason, the note or the guest (`field` says)
    OVERRIDE_PIN_WRONG = "override_pin_wrong"
    OVERRIDE_WAIT = "override_wait"  # too many wrong PINs: try again in `retry_after` s


class FieldProblem(StrEnum):
    """What is wrong with one field of the walk-in form."""

    REQUIRED = "required"
    TOO_LONG = "too_long"
    INVALID_EMAIL = "invalid_email"
    EMAIL_TAKEN = "email_taken"
    CHOOSE_TICKET_TYPE = "choose_ticket_type"
    TOO_MANY_TAGS = "too_many_tags"


_FIELD_WORDS: Mapping[FieldProblem, str] = {
    FieldProblem.REQUIRED: "required",
    FieldProblem.TOO_LONG: "at most 200 characters",
    FieldProblem.INVALID_EMAIL: "not a valid email address",
    FieldProblem.EMAIL_TAKEN: "already registered: search for this person instead",
    FieldProblem.CHOOSE_TICKET_TYPE: "choose a ticket type",
    FieldProblem.TOO_MANY_TAGS: "at most 50 tags of 64 characters",
}


class GateError(Exception):
    """A gate operation that cannot run; `code` says why, `str()` says it in English."""

    def __init__(self, code: Problem, message: str) -> None:
        super().__init__(message)
        self.code = code


class PairingError(GateError):
    pass


class OverrideRefused(GateError):
    """An override that was not done: `field` names the input at fault (`reason`, `note`,
    `pin`, `code`), `retry_after` how many seconds until the next PIN may be tried."""

    def __init__(
        self, code: Problem, message: str, *, field: str | None = None, retry_after: float = 0
    ) -> None:
        super().__init__(code, message)
        self.field = field
        self.retry_after = retry_after


class WalkinInvalid(GateError):
    """The walk-in form's problems, per field."""

    def __init__(self, problems: Mapping[str, FieldProblem]) -> None:
        self.problems = dict(problems)
        self.errors = {name: _FIELD_WORDS[p] for name, p in self.problems.items()}
        text = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(Problem.WALKIN_INVALID, text)
