"""What the scanner screens show, decided without Flet: verdict looks, status lines, times.

Views call these with `scanner_app.state` values and a `Texts`; every function here is pure
(the current time is an argument), so all of it is unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from scanner_app.state import (
    AttendeeSummary,
    CheckpointChoice,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    SyncStatus,
)
from scanner_app.ui.i18n import Lang, Texts

__all__ = [
    "Action",
    "Screen",
    "StatusLook",
    "Tone",
    "VerdictLook",
    "attendee_line",
    "clock",
    "conflict_facts",
    "conflict_resolutions",
    "conflict_title",
    "directions_for",
    "field_error_text",
    "find_checkpoint",
    "is_pairing_uri",
    "occupancy_fraction",
    "occupancy_tone",
    "other_lang",
    "parse_tags",
    "plain_error",
    "reason_text",
    "relative_time",
    "shortcut",
    "start_screen",
    "status_look",
    "verdict_label",
    "verdict_look",
]

ADMIT_SECONDS = 1.5
ATTENTION_SECONDS = 2.5  # a denial or a warning stays a little longer: someone has to read it


class Tone(StrEnum):
    """The three faces of a verdict; also used for occupancy and the online badge."""

    ADMIT = "admit"  # green, check mark
    DENY = "deny"  # red, cross
    WARN = "warn"  # amber, exclamation mark


class Screen(StrEnum):
    PAIR = "pair"
    SETUP = "setup"
    SCAN = "scan"
    SEARCH = "search"
    WALKIN = "walkin"
    ACTIVITY = "activity"
    ADMIN = "admin"


# The screens reachable from the navigation bar, in its order.
NAV_SCREENS: tuple[Screen, ...] = (
    Screen.SCAN,
    Screen.SEARCH,
    Screen.WALKIN,
    Screen.ACTIVITY,
    Screen.ADMIN,
)


class Action(StrEnum):
    """What a keyboard shortcut asks for (desk use)."""

    GO_SCAN = "go_scan"
    GO_SEARCH = "go_search"
    GO_WALKIN = "go_walkin"
    GO_ACTIVITY = "go_activity"
    GO_ADMIN = "go_admin"
    TOGGLE_DIRECTION = "toggle_direction"
    TOGGLE_LANGUAGE = "toggle_language"
    SYNC_NOW = "sync_now"
    DISMISS = "dismiss"


# The screen each navigation shortcut opens.
SCREEN_OF_ACTION: Mapping[Action, Screen] = {
    Action.GO_SCAN: Screen.SCAN,
    Action.GO_SEARCH: Screen.SEARCH,
    Action.GO_WALKIN: Screen.WALKIN,
    Action.GO_ACTIVITY: Screen.ACTIVITY,
    Action.GO_ADMIN: Screen.ADMIN,
}

_FUNCTION_KEYS: Mapping[str, Action] = {
    "F2": Action.GO_SCAN,
    "F3": Action.GO_SEARCH,
    "F4": Action.GO_WALKIN,
    "F5": Action.GO_ACTIVITY,
    "F6": Action.GO_ADMIN,
    "F7": Action.TOGGLE_DIRECTION,
    "F8": Action.TOGGLE_LANGUAGE,
    "F9": Action.SYNC_NOW,
    "Escape": Action.DISMISS,
}
_ALT_DIGITS: Mapping[str, Action] = {
    "1": Action.GO_SCAN,
    "2": Action.GO_SEARCH,
    "3": Action.GO_WALKIN,
    "4": Action.GO_ACTIVITY,
    "5": Action.GO_ADMIN,
}


def shortcut(
    key: str, *, ctrl: bool = False, alt: bool = False, shift: bool = False
) -> Action | None:
    """The action of a key press, or None: plain letters and digits always reach the code field,
    because a handheld scanner types them.

    >>> shortcut("F3")
    <Action.GO_SEARCH: 'go_search'>
    >>> shortcut("A") is None
    True
    """
    if alt and not ctrl and key in _ALT_DIGITS:
        return _ALT_DIGITS[key]
    if ctrl or alt or shift:
        return None
    return _FUNCTION_KEYS.get(key)


def start_screen(*, paired: bool, revoked: bool, config: GateConfig | None) -> Screen:
    """Where the app opens: pair first, then choose a gate, then scan."""
    if not paired or revoked:
        return Screen.PAIR
    if config is None:
        return Screen.SETUP
    return Screen.SCAN


def other_lang(lang: Lang) -> Lang:
    return Lang.ES if lang is Lang.EN else Lang.EN


# --- times ------------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def clock(moment: datetime, tz: Any = None) -> str:
    """Wall-clock time at the door, "21:14" (naive datetimes are UTC; `tz` defaults to local)."""
    return _aware(moment).astimezone(tz).strftime("%H:%M")


def relative_time(then: datetime | None, now: datetime, t: Texts) -> str:
    """ "just now", "5 min ago", "3 h ago"… in the app's language."""
    if then is None:
        return t("time.never")
    seconds = int((_aware(now) - _aware(then)).total_seconds())
    if seconds < 10:
        return t("time.just_now")
    if seconds < 60:
        return t("time.seconds_ago", n=seconds)
    if seconds < 3600:
        return t("time.minutes_ago", n=seconds // 60)
    if seconds < 86400:
        return t("time.hours_ago", n=seconds // 3600)
    return t("time.days_ago", n=seconds // 86400)


# --- verdicts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerdictLook:
    """A verdict as the full-screen overlay draws it: colour, icon and one big word."""

    tone: Tone
    word: str
    reason: str  # the reason (and warnings) in plain words
    name: str
    ticket: str  # ticket type name
    vip: bool
    offline: bool
    manual: bool
    hold_seconds: float


def reason_text(verdict: GateVerdict, t: Texts, tz: Any = None) -> str:
    """The reason in the door's words: "Already inside since 21:14 via Gate B"."""
    reason = verdict.reason
    if reason == "already_inside" and verdict.inside_since is not None:
        time = clock(verdict.inside_since, tz)
        if verdict.inside_via:
            return t("reason.already_inside_since_via", time=time, gate=verdict.inside_via)
        return t("reason.already_inside_since", time=time)
    if reason == "ok" and verdict.direction == "out":
        return t("reason.ok_out")
    key = f"reason.{reason}"
    return t(key) if t.has(key) else verdict.message


def _warning_text(warning: str, t: Texts) -> str:
    key = f"warning.{warning}"
    return t(key) if t.has(key) else warning


def verdict_look(
    verdict: GateVerdict, t: Texts, *, hold_seconds: float = ADMIT_SECONDS, tz: Any = None
) -> VerdictLook:
    """Green ✔ ADMIT, red ✖ DENIED, or amber ! CHECK (a warning, or a code read twice)."""
    if verdict.accepted and not verdict.warnings:
        tone = Tone.ADMIT
        word = t("verdict.exit") if verdict.direction == "out" else t("verdict.admit")
    elif verdict.accepted or verdict.reason == "duplicate_scan":
        tone, word = Tone.WARN, t("verdict.check")
    else:
        tone, word = Tone.DENY, t("verdict.deny")
    lines = [reason_text(verdict, t, tz)]
    lines += [_warning_text(w, t) for w in verdict.warnings]
    att = verdict.attendee
    return VerdictLook(
        tone=tone,
        word=word,
        reason=" · ".join(lines),
        name=att.name if att else "",
        ticket=(att.ticket_type_name or att.ticket_type or "") if att else "",
        vip=bool(att and att.is_vip),
        offline=verdict.offline,
        manual=verdict.manual,
        hold_seconds=hold_seconds if tone is Tone.ADMIT else max(hold_seconds, ATTENTION_SECONDS),
    )


def verdict_label(look: VerdictLook) -> str:
    """One line a screen reader (and a browser test) reads for the verdict overlay."""
    parts = [look.word, look.name, look.ticket, look.reason]
    return " · ".join(p for p in parts if p)


# --- status bar -------------------------------------------------------------------------------


def occupancy_fraction(stats: GateStats | None) -> float | None:
    """Occupancy over capacity, clamped to 0..1; None when the zone has no capacity."""
    if stats is None or not stats.capacity:
        return None
    return max(0.0, min(1.0, stats.occupancy / stats.capacity))


def occupancy_tone(fraction: float | None) -> Tone:
    if fraction is None or fraction < 0.9:
        return Tone.ADMIT
    return Tone.DENY if fraction >= 1.0 else Tone.WARN


@dataclass(frozen=True, slots=True)
class StatusLook:
    online: bool
    connection: str  # "Online" / "Offline since 21:02" / "Syncing…"
    pending: int
    pending_text: str
    last_sync: str
    problem: str | None  # last sync error in plain words
    occupancy: str | None
    fraction: float | None
    occupancy_tone: Tone
    counts: str  # "In today: 12 · Out today: 3"
    revoked: bool


def status_look(
    status: SyncStatus,
    stats: GateStats | None,
    now: datetime,
    t: Texts,
    tz: Any = None,
    *,
    syncing: bool = False,
) -> StatusLook:
    """`syncing` is the operator's own "sync now" in progress (the core's `status.syncing` is
    also true while a pull long-polls, which is most of the time, so it is not shown)."""
    if status.revoked:
        connection = t("status.revoked")
    elif syncing:
        connection = t("status.syncing")
    elif status.online:
        connection = t("status.online")
    elif status.offline_since is not None:
        connection = t("status.offline_since", time=clock(status.offline_since, tz))
    else:
        connection = t("status.offline")
    last_sync = (
        t("status.last_sync", ago=relative_time(status.last_sync, now, t))
        if status.last_sync
        else t("status.never_synced")
    )
    occupancy: str | None = None
    fraction = occupancy_fraction(stats)
    counts = ""
    if stats is not None:
        zone = stats.zone_name or t("status.zone")
        occupancy = (
            t("status.occupancy", zone=zone, occupancy=stats.occupancy, capacity=stats.capacity)
            if stats.capacity
            else t("status.occupancy_open", zone=zone, occupancy=stats.occupancy)
        )
        counts = (
            f"{t('status.entries', n=stats.entries_today)} · "
            f"{t('status.exits', n=stats.exits_today)}"
        )
    return StatusLook(
        online=status.online and not status.revoked,
        connection=connection,
        pending=status.pending,
        pending_text=t("status.pending", n=status.pending)
        if status.pending
        else t("status.all_uploaded"),
        last_sync=last_sync,
        problem=plain_error(status.last_error, t) if status.last_error else None,
        occupancy=occupancy,
        fraction=fraction,
        occupancy_tone=occupancy_tone(fraction),
        counts=counts,
        revoked=status.revoked,
    )


_ERROR_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("timed out", "timeout"), "error.timeout"),
    (("401", "403", "invalid_api_key", "unauthorized", "revoked"), "error.unauthorized"),
    (
        (
            "connect",
            "refused",
            "unreachable",
            "name or service",
            "getaddrinfo",
            "network",
            "no route",
        ),
        "error.unreachable",
    ),
    (("500", "502", "503", "504", "internal_error", "server error"), "error.server"),
)


def plain_error(message: str | None, t: Texts) -> str:
    """A sync or client error in words door staff understand."""
    if not message:
        return ""
    lowered = message.lower()
    for needles, key in _ERROR_HINTS:
        if any(n in lowered for n in needles):
            return t(key)
    return t("error.generic", error=message)


# --- setup, search, walk-in, admin ------------------------------------------------------------


def directions_for(checkpoint: CheckpointChoice | None) -> tuple[str, ...]:
    """The directions the operator may pick at a checkpoint: both only at a `both` gate."""
    if checkpoint is None or checkpoint.direction == "both":
        return ("in", "out")
    return (checkpoint.direction,)


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


_SCAN_RESOLUTIONS = ("accept", "void_scan", "revoke_ticket")
_REGISTRATION_RESOLUTIONS = ("merge", "accept")


def conflict_resolutions(kind: str) -> tuple[str, ...]:
    """The resolutions that make sense for a conflict kind (SPEC section 7)."""
    return _REGISTRATION_RESOLUTIONS if kind == "duplicate_registration" else _SCAN_RESOLUTIONS


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


def is_pairing_uri(text: str) -> bool:
    """A `doorcheck://pair?server=…&code=…` link (from a pairing QR or pasted)."""
    return text.strip().lower().startswith("doorcheck://pair")


_FIELD_ERRORS: Mapping[str, str] = {
    "required": "error.required",
    "not a valid email address": "error.email",
    "choose a ticket type": "error.ticket_type",
    "already registered: search for this person instead": "error.email_taken",
}


def field_error_text(message: str, t: Texts) -> str:
    """A walk-in field error from the core, in the app's language when it is a known one."""
    key = _FIELD_ERRORS.get(message.strip().lower())
    return t(key) if key else message
