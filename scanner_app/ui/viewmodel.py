"""What the scan screen and status bar show, decided without Flet: verdict looks, status lines,
times. (Navigation lives in `navigation.py`, the other screens' words in `forms.py`.)

Views call these with `scanner_app.state` values and a `Texts`; every function here is pure
(the current time is an argument), so all of it is unit-tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from scanner_app.state import GateStats, GateVerdict, SyncStatus
from scanner_app.ui.denial_words import detail_lines, headline_key
from scanner_app.ui.forms import problem_text
from scanner_app.ui.i18n import Texts

__all__ = [
    "ADMIT_SECONDS",
    "StatusLook",
    "Tone",
    "VerdictLook",
    "clock",
    "occupancy_fraction",
    "occupancy_tone",
    "reason_text",
    "relative_time",
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
    name: str  # the attendee's, or what the code was ("Not a ticket", "Unknown ticket")
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
    """Green ✔ ADMIT, red ✖ DENIED, or amber ! CHECK (a warning, or a code read twice with no
    verdict on record); a repeat looks like the verdict it repeats, marked as a repeat."""
    if verdict.accepted and not verdict.warnings:
        tone = Tone.ADMIT
        word = t("verdict.exit") if verdict.direction == "out" else t("verdict.admit")
    elif verdict.accepted or verdict.reason == "duplicate_scan":
        tone, word = Tone.WARN, t("verdict.check")
    else:
        tone, word = Tone.DENY, t("verdict.deny")
    lines = [reason_text(verdict, t, tz)]
    lines += [_warning_text(w, t) for w in verdict.warnings]
    lines += detail_lines(verdict, t, tz)
    att = verdict.attendee
    return VerdictLook(
        tone=tone,
        word=word,
        reason=" · ".join(lines),
        name=att.name if att else t(headline_key(verdict)),
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
        problem=problem_text(status.problem, status.last_error, t) if status.last_error else None,
        occupancy=occupancy,
        fraction=fraction,
        occupancy_tone=occupancy_tone(fraction),
        counts=counts,
        revoked=status.revoked,
    )
