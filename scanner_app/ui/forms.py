"""What the setup, search, walk-in and admin screens show, decided without Flet: directions a
checkpoint allows, a search result's line, tags, conflicts in plain words, and the core's
problems (codes, never message text) in the app's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scanner_app.errors import FieldProblem, Problem
from scanner_app.state import AttendeeSummary, CheckpointChoice, EventChoice
from scanner_app.ui.i18n import Texts
from shared.conflicts import resolutions_for
from shared.policy import allowed_directions
from shared.rules import CheckpointDirection

__all__ = [
    "attendee_line",
    "conflict_facts",
    "conflict_resolutions",
    "conflict_title",
    "directions_for",
    "field_error_text",
    "find_checkpoint",
    "parse_tags",
    "pin_mismatch",
    "pin_wrong_text",
    "problem_text",
]


def directions_for(checkpoint: CheckpointChoice | None) -> tuple[str, ...]:
    """The directions the operator may pick at a checkpoint: both only at a `both` gate."""
    kind = CheckpointDirection(checkpoint.direction) if checkpoint else CheckpointDirection.BOTH
    return tuple(d.value for d in allowed_directions(kind))


def find_checkpoint(events: Iterable[EventChoice], checkpoint_id: str) -> CheckpointChoice | None:
    for event in events:
        for cp in event.checkpoints:
            if cp.id == checkpoint_id:
                return cp
    return None


def attendee_line(att: AttendeeSummary, t: Texts) -> str:
    """The second line of a search result: ticket, inside or not, status when not valid."""
    parts = [att.ticket_type_name or att.ticket_type or ""]
    parts.append(t("search.inside") if att.inside else t("search.outside"))
    if att.status != "valid":
        key = f"attendee.{att.status}"
        parts.append(t(key) if t.has(key) else att.status)
    if att.email:
        parts.append(att.email)
    return " · ".join(p for p in parts if p)


def parse_tags(text: str) -> list[str]:
    """ "vip, press ,, crew" -> ["vip", "press", "crew"] (order kept, duplicates dropped)."""
    seen: list[str] = []
    for part in text.split(","):
        tag = part.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def conflict_resolutions(kind: str) -> tuple[str, ...]:
    """The resolutions that make sense for a conflict kind (SPEC section 7)."""
    return tuple(r.value for r in resolutions_for(kind))


def conflict_facts(conflict: Mapping[str, Any], t: Texts) -> list[str]:
    """When it was opened, how many readings, and what the server decided, in plain words."""
    facts = [str(conflict.get("created_at", ""))[:16].replace("T", " ")]
    scans = conflict.get("scan_ids") or []
    if scans:
        facts.append(t("admin.scans", n=len(scans)))
    details = conflict.get("details") or {}
    reason = details.get("server_reason") if isinstance(details, Mapping) else None
    if isinstance(reason, str) and t.has(f"reason.{reason}"):
        facts.append(t(f"reason.{reason}"))
    return [f for f in facts if f]


def conflict_title(conflict: Mapping[str, Any], t: Texts) -> str:
    kind = str(conflict.get("kind", ""))
    key = f"conflict.{kind}"
    return t(key) if t.has(key) else kind


_FIELD_ERRORS: Mapping[FieldProblem, str] = {
    FieldProblem.REQUIRED: "error.required",
    FieldProblem.TOO_LONG: "error.too_long",
    FieldProblem.INVALID_EMAIL: "error.email",
    FieldProblem.EMAIL_TAKEN: "error.email_taken",
    FieldProblem.CHOOSE_TICKET_TYPE: "error.ticket_type",
    FieldProblem.TOO_MANY_TAGS: "error.too_many_tags",
}


def field_error_text(problem: FieldProblem, t: Texts) -> str:
    """A walk-in field's problem in the app's language."""
    return t(_FIELD_ERRORS[problem])


def problem_text(problem: str | None, message: str | None, t: Texts) -> str:
    """A problem of the core (a `scanner_app.errors.Problem` value) in the app's language; one it
    has no words for is shown with the core's own message."""
    if problem is not None and problem in set(Problem) and t.has(f"problem.{problem}"):
        return t(f"problem.{problem}", error=message or "")
    if not message:
        return ""
    return t("error.generic", error=message)


def pin_mismatch(mode: str, pin: str, confirm: str) -> bool:
    """A PIN being chosen must be typed twice the same (an entered one is typed once)."""
    return mode != "enter" and pin.strip() != confirm.strip()


def pin_wrong_text(remaining: int, wait_s: float, t: Texts) -> str:
    """A wrong PIN: the tries left before the gate erases itself, and any wait before the next."""
    if wait_s >= 1:
        return t("lock.wait", left=remaining, seconds=int(wait_s + 0.999))
    return t("lock.wrong", left=remaining)
