"""Denials that say what to do next, repeats and overrides, in both languages (SPEC section 11)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scanner_app.ui import viewmodel as vm
from scanner_app.ui.denial_words import detail_lines
from scanner_app.ui.i18n import texts
from shared.denials import DenialDetail, short_code
from tests.ui.test_views import verdict

EN, ES = texts("en"), texts("es")
NOW = datetime(2026, 5, 1, 19, 30, tzinfo=UTC)
MADRID = ZoneInfo("Europe/Madrid")
CODE = short_code("DC1AEHIDBUTUEJAOVHFMHSQAH2C63NFS7D6I4Q")


def _denied(reason: str, **detail: Any) -> Any:
    return verdict("denied", reason, detail=DenialDetail(code=CODE, **detail))


def test_each_denial_says_what_to_do_next_with_the_code() -> None:
    cases = {
        "max_entries_reached": (
            {"entries_used": 2, "entries_allowed": 2, "last_entry_at": NOW},
            ["2 of 2 entries used", "last entry 21:30"],
        ),
        "zone_full": ({"occupancy": 5, "capacity": 5}, ["5 / 5 inside"]),
        "ticket_type_not_allowed": (
            {"accepted_at": ("cp_1", "cp_2"), "accepted_at_names": ("Main entrance", "Gate B")},
            ["Accepted at: Main entrance, Gate B"],
        ),
        "not_yet_valid": ({"valid_from": NOW}, ["Valid from 21:30"]),
        "checkpoint_closed": ({"opens_at": NOW}, ["Opens at 21:30"]),
    }
    for reason, (detail, wanted) in cases.items():
        lines = detail_lines(_denied(reason, **detail), EN, MADRID, NOW)
        assert lines == [*wanted, f"Code {CODE}"], reason
    nowhere = detail_lines(_denied("ticket_type_not_allowed"), EN, MADRID, NOW)
    assert nowhere[0] == "No gate of this event accepts this ticket"


def test_times_are_the_events_and_another_day_says_which() -> None:
    earlier = datetime(2026, 4, 29, 8, 5, tzinfo=UTC)
    lines = detail_lines(_denied("expired", valid_until=earlier), EN, MADRID, NOW)
    assert lines[0] == "Was valid until 29 Apr 10:05"
    assert detail_lines(_denied("expired", valid_until=NOW), EN, UTC, NOW)[0].endswith("19:30")


def test_a_code_that_names_nobody_is_named_for_what_it_is() -> None:
    for reason, en, es in (
        ("malformed_code", "Not a ticket", "No es una entrada"),
        ("invalid_signature", "Forged or damaged ticket", "Entrada falsa o dañada"),
        ("unknown_code", "Unknown ticket", "Entrada desconocida"),
    ):
        denied = verdict("denied", reason, attendee=None, detail=DenialDetail(code="NOPE"))
        assert vm.verdict_look(denied, EN).name == en
        assert vm.verdict_look(denied, ES).name == es
        assert "Code NOPE" in vm.verdict_look(denied, EN).reason


def test_a_repeat_keeps_the_colour_and_reason_of_the_verdict_on_record() -> None:
    inside = datetime(2026, 5, 1, 19, 14, tzinfo=UTC)
    again = verdict(
        "denied", "already_inside", repeat=True, inside_since=inside, inside_via="Gate B",
        detail=DenialDetail(code=CODE, inside_since=inside),
    )  # fmt: skip
    look = vm.verdict_look(again, EN, tz=MADRID)
    assert look.tone is vm.Tone.DENY
    assert look.reason.startswith("Already inside since 21:14 via Gate B")
    assert "Scanned again: the same verdict" in look.reason
    admitted = vm.verdict_look(verdict(repeat=True), ES)
    assert admitted.tone is vm.Tone.ADMIT and "Leída de nuevo" in admitted.reason


def test_an_override_is_marked_and_a_plain_admission_has_no_extra_line() -> None:
    assert detail_lines(verdict(), EN) == []
    look = vm.verdict_look(verdict(override=True, override_reason="vip"), EN)
    assert look.tone is vm.Tone.ADMIT and "Let in by a supervisor" in look.reason
