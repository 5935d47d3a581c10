"""The scanner screens' decisions, without Flet: verdict looks, status lines, texts, shortcuts."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scanner_app.errors import FieldProblem, Problem
from scanner_app.links import is_pairing_uri
from scanner_app.state import (
    AttendeeSummary,
    CheckpointChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    SyncStatus,
)
from scanner_app.ui import forms
from scanner_app.ui import navigation as nav
from scanner_app.ui import viewmodel as vm
from scanner_app.ui.i18n import CATALOGS, Lang, texts
from scanner_app.ui.navigation import Action, Screen
from scanner_app.ui.viewmodel import Tone
from shared.rules import Reason

EN, ES = texts("en"), texts("es")
NOW = datetime(2026, 5, 15, 21, 30, tzinfo=UTC)

ANA = AttendeeSummary(
    id="att_ana",
    first_name="Ana",
    last_name="Ruiz",
    email="ana@example.com",
    ticket_type="vip",
    ticket_type_name="VIP",
    tags=("press",),
    is_vip=True,
)


def verdict(
    status: str = "accepted",
    reason: str = "ok",
    *,
    warnings: tuple[str, ...] = (),
    direction: str = "in",
    attendee: AttendeeSummary | None = ANA,
    **extra: object,
) -> GateVerdict:
    return GateVerdict(
        id="r1",
        code="DC1ABC",
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message="",
        warnings=warnings,
        attendee=attendee,
        offline=bool(extra.pop("offline", False)),
        scanned_at=NOW,
        direction=direction,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def status(**fields: object) -> SyncStatus:
    base: dict[str, object] = {
        "paired": True,
        "online": True,
        "offline_since": None,
        "pending": 0,
        "last_sync": NOW - timedelta(minutes=2),
        "last_error": None,
    }
    base.update(fields)
    return SyncStatus(**base)  # type: ignore[arg-type]


# --- verdicts ---------------------------------------------------------------------------------


def test_an_accepted_entry_is_a_green_admit_with_name_ticket_and_vip() -> None:
    look = vm.verdict_look(verdict(), EN)
    assert (look.tone, look.word, look.reason) == (Tone.ADMIT, "ADMIT", "Welcome")
    assert (look.name, look.ticket, look.vip) == ("Ana Ruiz", "VIP", True)
    assert look.hold_seconds == pytest.approx(1.5)
    assert vm.verdict_label(look) == "ADMIT · Ana Ruiz · VIP · Welcome"


def test_a_denial_is_red_and_says_where_they_went_in() -> None:
    v = verdict(
        "denied",
        "already_inside",
        inside_since=datetime(2026, 5, 15, 21, 14, tzinfo=UTC),
        inside_via="Gate B",
    )
    look = vm.verdict_look(v, EN, tz=UTC)
    assert (look.tone, look.word) == (Tone.DENY, "DENIED")
    assert look.reason == "Already inside since 21:14 via Gate B"
    assert look.hold_seconds > 1.5  # someone has to read a denial
    es = vm.verdict_look(v, ES, tz=UTC)
    assert (es.word, es.reason) == ("DENEGADO", "Ya está dentro desde las 21:14 por Gate B")


def test_warnings_and_double_reads_are_amber() -> None:
    exit_not_inside = vm.verdict_look(verdict(warnings=("not_inside",), direction="out"), EN)
    assert (exit_not_inside.tone, exit_not_inside.word) == (Tone.WARN, "CHECK")
    assert exit_not_inside.reason == "Goodbye · Was not recorded inside"
    twice = vm.verdict_look(verdict("denied", "duplicate_scan"), EN)
    assert (twice.tone, twice.reason) == (Tone.WARN, "Just scanned")


def test_a_plain_exit_is_green_exit() -> None:
    look = vm.verdict_look(verdict(direction="out"), ES)
    assert (look.tone, look.word, look.reason) == (Tone.ADMIT, "SALIDA", "Hasta pronto")


def test_an_unknown_code_has_no_name_and_offline_manual_marks_are_kept() -> None:
    look = vm.verdict_look(
        verdict("denied", "unknown_code", attendee=None, offline=True, manual=True), EN
    )
    assert (look.name, look.ticket, look.vip) == ("Unknown ticket", "", False)
    assert look.offline and look.manual
    assert look.reason == "Ticket not found"


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_door_words_in_both_languages(reason: Reason) -> None:
    for t in (EN, ES):
        assert t.has(f"reason.{reason.value}")
        text = vm.reason_text(verdict("denied", reason.value), t)
        assert text and text != reason.value


def test_an_unknown_future_reason_falls_back_to_the_core_message() -> None:
    v = replace(verdict("denied", "solar_eclipse"), message="Eclipse")
    assert vm.reason_text(v, EN) == "Eclipse"


# --- texts ------------------------------------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_spanish_has_every_english_string_with_the_same_placeholders() -> None:
    en, es = CATALOGS[Lang.EN], CATALOGS[Lang.ES]
    assert set(en) == set(es)
    for key in en:
        assert _fields(en[key]) == _fields(es[key]), key
        assert es[key].strip(), key


def test_an_unknown_language_falls_back_to_english() -> None:
    assert texts("fr").lang is Lang.EN
    assert texts("es")("status.pending", n=3) == "3 por subir"


# --- times and status -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(3, "just now"), (42, "42 s ago"), (300, "5 min ago"), (7200, "2 h ago"), (200000, "2 d ago")],
)
def test_relative_time(seconds: int, expected: str) -> None:
    assert vm.relative_time(NOW - timedelta(seconds=seconds), NOW, EN) == expected


def test_relative_time_of_nothing_is_never_and_spanish_reads_hace() -> None:
    assert vm.relative_time(None, NOW, EN) == "never"
    assert vm.relative_time(NOW - timedelta(minutes=5), NOW, ES) == "hace 5 min"


def test_offline_status_says_since_when_and_what_waits() -> None:
    look = vm.status_look(
        status(online=False, offline_since=datetime(2026, 5, 15, 21, 2, tzinfo=UTC), pending=3),
        None,
        NOW,
        EN,
        tz=UTC,
    )
    assert not look.online
    assert look.connection == "Offline since 21:02"
    assert look.pending_text == "3 to upload"
    assert look.last_sync == "Synced 2 min ago"
    assert look.occupancy is None


def test_online_status_with_occupancy_and_counts() -> None:
    stats = GateStats("Main hall", occupancy=95, capacity=100, entries_today=120, exits_today=25)
    look = vm.status_look(status(), stats, NOW, EN)
    assert look.online and look.connection == "Online"
    assert look.pending_text == "All uploaded"
    assert look.occupancy == "Main hall: 95 / 100"
    assert look.fraction == pytest.approx(0.95)
    assert look.occupancy_tone is Tone.WARN
    assert look.counts == "In today: 120 · Out today: 25"


def test_status_never_synced_revoked_and_a_sync_error_in_plain_words() -> None:
    look = vm.status_look(
        status(
            online=False,
            last_sync=None,
            revoked=True,
            last_error="this device is no longer allowed (invalid_api_key): ...",
            problem="unauthorized",
        ),
        None,
        NOW,
        ES,
    )
    assert look.last_sync == "Nunca sincronizado"
    assert look.connection == "Este dispositivo fue revocado" and look.revoked
    assert look.problem == "El servidor rechazó las credenciales de este dispositivo."


@pytest.mark.parametrize(
    ("stats", "fraction", "tone"),
    [
        (None, None, Tone.ADMIT),
        (GateStats("Hall", 10, None, 0, 0), None, Tone.ADMIT),
        (GateStats("Hall", 10, 100, 0, 0), 0.1, Tone.ADMIT),
        (GateStats("Hall", 120, 100, 0, 0), 1.0, Tone.DENY),
    ],
)
def test_occupancy_fraction_is_clamped_and_toned(
    stats: GateStats | None, fraction: float | None, tone: Tone
) -> None:
    assert vm.occupancy_fraction(stats) == fraction
    assert vm.occupancy_tone(vm.occupancy_fraction(stats)) is tone


@pytest.mark.parametrize(
    ("problem", "message", "key"),
    [
        (Problem.UNREACHABLE, "cannot reach http://x: ConnectError", "problem.unreachable"),
        (Problem.TIMEOUT, "http://x did not answer in time", "problem.timeout"),
        (Problem.SERVER_ERROR, "server error 503 at http://x", "problem.server_error"),
    ],
)
def test_problems_are_told_by_their_code(problem: Problem, message: str, key: str) -> None:
    assert forms.problem_text(problem.value, message, EN) == EN(key)
    # the words come from the code alone: the message's text plays no part
    assert forms.problem_text(problem.value, "something else entirely", ES) == ES(key)


@pytest.mark.parametrize("lang", [EN, ES])
def test_every_problem_and_field_problem_has_words(lang: Any) -> None:
    for problem in Problem:
        if problem is not Problem.WALKIN_INVALID:
            assert lang.has(f"problem.{problem.value}"), problem
    for field in FieldProblem:
        assert forms.field_error_text(field, lang)


def test_an_unrecognised_error_is_still_shown() -> None:
    assert forms.problem_text(None, "disk full", EN) == "Something went wrong: disk full"
    assert forms.problem_text(None, None, EN) == ""


# --- navigation, forms, admin -----------------------------------------------------------------


def test_shortcuts_leave_letters_and_digits_to_the_scanner() -> None:
    assert nav.shortcut("F3") is Action.GO_SEARCH
    assert nav.shortcut("Escape") is Action.DISMISS
    assert nav.shortcut("F9") is Action.SYNC_NOW
    assert nav.shortcut("2", alt=True) is Action.GO_SEARCH
    assert nav.shortcut("2") is None
    assert nav.shortcut("A") is None
    assert nav.shortcut("F3", ctrl=True) is None


def test_start_screen() -> None:
    config = GateConfig("evt_1", "cp_1", "in")
    assert nav.start_screen(paired=False, revoked=False, config=None) is Screen.PAIR
    assert nav.start_screen(paired=True, revoked=True, config=config) is Screen.PAIR
    assert nav.start_screen(paired=True, revoked=False, config=None) is Screen.SETUP
    assert nav.start_screen(paired=True, revoked=False, config=config) is Screen.SCAN


def test_directions_for_a_checkpoint() -> None:
    assert forms.directions_for(CheckpointChoice("cp", "A", "both", None, True)) == ("in", "out")
    assert forms.directions_for(CheckpointChoice("cp", "B", "out", None, True)) == ("out",)


def test_parse_tags_and_pairing_links() -> None:
    assert forms.parse_tags(" vip, press ,, vip,crew ") == ["vip", "press", "crew"]
    assert is_pairing_uri(" doorcheck://pair?server=http://x&code=1 ")
    assert not is_pairing_uri("DC1ABC")


def test_field_errors_are_translated_when_known() -> None:
    assert forms.field_error_text(FieldProblem.REQUIRED, ES) == "Obligatorio"
    assert forms.field_error_text(FieldProblem.TOO_LONG, ES) == "Como máximo 200 caracteres"


def test_attendee_line_and_conflict_choices() -> None:
    cancelled = AttendeeSummary(
        "att_2", "Bo", "Lee", None, "general", "General", status="cancelled"
    )
    assert forms.attendee_line(ANA, EN) == "VIP · Not inside · ana@example.com"
    assert forms.attendee_line(cancelled, ES) == "General · Fuera · Cancelada"
    assert forms.conflict_resolutions("already_inside") == ("accept", "void_scan", "revoke_ticket")
    assert "merge" in forms.conflict_resolutions("duplicate_registration")
    assert forms.conflict_title({"kind": "zone_full"}, EN) == "Admitted while the zone was full"


def test_a_long_poll_is_not_shown_as_syncing_but_sync_now_is() -> None:
    assert vm.status_look(status(syncing=True), None, NOW, EN).connection == "Online"
    assert vm.status_look(status(), None, NOW, EN, syncing=True).connection == "Syncing…"
