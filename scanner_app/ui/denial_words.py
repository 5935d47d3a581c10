"""What a verdict tells staff beyond its reason (SPEC section 11), in the door's words: who, when
and where for `already_inside`, the count and last entry for `max_entries_reached`, occupancy /
capacity for `zone_full`, where the ticket is accepted for `ticket_type_not_allowed`, the
validity and opening times, the scanned code (shortened) on every denial, a repeat and an
override marked as such. Pure: the detail comes computed from `shared.denials`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scanner_app.state import GateVerdict
from scanner_app.ui.i18n import Texts

__all__ = ["detail_lines", "headline_key"]

_NOBODY = {"malformed_code": "verdict.not_a_ticket", "invalid_signature": "verdict.forged"}


def headline_key(verdict: GateVerdict) -> str:
    """The text key of the name line when the code named nobody: a malformed code is "Not a
    ticket", a forged one "Forged or damaged ticket", anything else "Unknown ticket"."""
    return _NOBODY.get(verdict.reason, "verdict.unknown_person")


def _when(moment: datetime, tz: Any, now: datetime | None) -> str:
    """ "21:14" today (in the event's zone), "3 May 21:14" another day."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz)
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%d %b %H:%M")


def detail_lines(
    verdict: GateVerdict, t: Texts, tz: Any = None, now: datetime | None = None
) -> list[str]:
    """The lines under the reason; empty for a plain admission."""
    lines: list[str] = []
    if verdict.repeat:
        lines.append(t("verdict.repeat"))
    if verdict.override:
        lines.append(t("verdict.override"))
    detail = verdict.detail
    if detail is None or verdict.accepted:
        return lines
    reason = verdict.reason
    if reason in ("max_entries_reached", "reentry_not_allowed") and detail.entries_used is not None:
        if detail.entries_allowed is not None:
            used = t("detail.entries_of", used=detail.entries_used, allowed=detail.entries_allowed)
        else:
            used = t("detail.entries", used=detail.entries_used)
        lines.append(used)
        if detail.last_entry_at is not None:
            lines.append(t("detail.last_entry", time=_when(detail.last_entry_at, tz, now)))
    elif reason == "zone_full" and detail.occupancy is not None:
        capacity = "?" if detail.capacity is None else detail.capacity
        lines.append(t("detail.occupancy", occupancy=detail.occupancy, capacity=capacity))
    elif reason == "ticket_type_not_allowed":
        names = detail.accepted_at_names or detail.accepted_at
        lines.append(
            t("detail.accepted_at", gates=", ".join(names))
            if names
            else t("detail.accepted_nowhere")
        )
    elif reason == "not_yet_valid" and detail.valid_from is not None:
        lines.append(t("detail.valid_from", time=_when(detail.valid_from, tz, now)))
    elif reason == "expired" and detail.valid_until is not None:
        lines.append(t("detail.valid_until", time=_when(detail.valid_until, tz, now)))
    elif reason == "checkpoint_closed":
        if detail.opens_at is not None:
            lines.append(t("detail.opens_at", time=_when(detail.opens_at, tz, now)))
        elif detail.closes_at is not None:
            lines.append(t("detail.closed_at", time=_when(detail.closes_at, tz, now)))
    if detail.code:
        lines.append(t("detail.code", code=detail.code))
    return lines
