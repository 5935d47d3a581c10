"""Supervisor override in the core (SPEC section 11): the PIN's stored form and offline check,
the reason and note, the wait after wrong PINs, the admission it records, and that the timeline
never contests it (never a conflict by itself)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.history import History, Reading
from shared.kinds import Direction, OverrideReason, Reason, Status
from shared.override import (
    OverrideInvalid,
    admit_anyway,
    can_override,
    clean_note,
    hash_pin,
    override_reason,
    valid_pin,
    verify_pin,
    wrong_pin_delay,
)
from shared.policy import CheckpointPolicy, ZoneOccupancy
from shared.rules import ScanInput, Ticket, decide
from shared.sync import ScanItem, WireError, decode_item, encode
from shared.timeline import TimedReading, redecide

NOW = datetime(2026, 5, 15, 21, 0, tzinfo=UTC)
CP = CheckpointPolicy("cp_a", "evt_1", zone_id="zone_main")
TICKET = Ticket("att_1", "evt_1", "general", first_name="Ana")
SALT = b"s" * 16


def test_the_pin_is_stored_salted_with_its_parameters_and_checked_offline() -> None:
    stored = hash_pin("2468", SALT)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert base64.b64decode(salt) == SALT and len(base64.b64decode(key)) == 32
    assert "2468" not in stored and hash_pin("2468", b"t" * 16) != stored
    assert verify_pin("2468", stored)
    for wrong in ("2469", "24680", "", "\uff12\uff14\uff16\uff18"):  # fullwidth digits
        assert not verify_pin(wrong, stored)
    assert not verify_pin("2468", None) and not verify_pin("2468", "")


def test_a_stored_hash_a_gate_cannot_read_or_should_not_compute_fails_closed() -> None:
    stored = hash_pin("2468", SALT)
    parts = stored.split("$")
    huge = "$".join([parts[0], str(1 << 30), *parts[2:]])  # a gigabyte of memory: refused
    for bad in ("argon2$x", "scrypt$1$2$3", huge, stored.replace("scrypt", "bcrypt"), "$$$$$"):
        assert not verify_pin("2468", bad)
    assert not verify_pin("2468", "$".join([*parts[:4], "!!!", parts[5]]))


def test_a_pin_is_four_to_twelve_digits() -> None:
    assert valid_pin("0000") and valid_pin("123456789012")
    for bad in ("123", "1234567890123", "12a4", " 1234", 1234, None, "١٢٣٤"):
        assert not valid_pin(bad)
    with pytest.raises(OverrideInvalid):
        hash_pin("12", SALT)


def test_three_free_tries_then_the_wait_doubles_up_to_five_minutes() -> None:
    waits = [wrong_pin_delay(n).total_seconds() for n in range(1, 8)]
    assert waits == [0, 0, 1, 2, 4, 8, 16]
    assert wrong_pin_delay(10_000) == timedelta(minutes=5)


def test_reason_from_the_closed_list_and_a_real_note() -> None:
    assert override_reason("vip") is OverrideReason.VIP
    assert [r.value for r in OverrideReason] == ["vip", "staff_decision", "ticket_problem", "other"]
    with pytest.raises(OverrideInvalid) as bad:
        override_reason("because")
    assert bad.value.field == "reason"
    assert clean_note("  Lost wristband, ID checked \n") == "Lost wristband, ID checked"
    for note in ("", "   ", "x" * 10_000, "nul\x00byte", "bell\x07", 42, None):
        with pytest.raises(OverrideInvalid) as refused:
            clean_note(note)
        assert refused.value.field == "note"
    assert clean_note("line one\nline two\tthree") == "line one\nline two\tthree"


def test_an_override_admits_and_counts_like_an_entry() -> None:
    scan = ScanInput(CP, NOW, ticket=TICKET, zone=ZoneOccupancy(10, 10), device_id="dev_a")
    denied = decide(scan)
    assert denied.reason is Reason.ZONE_FULL and can_override(denied)
    admitted = admit_anyway(scan, denied)
    assert admitted.accepted and admitted.override and admitted.overridden is Reason.ZONE_FULL
    assert admitted.occupancy_delta == 1 and admitted.record and not admitted.repeat
    inside = History().apply(
        Reading("cp_b", "zone_main", Direction.IN, Status.ACCEPTED, NOW - timedelta(hours=1))
    )
    again = ScanInput(CP, NOW, ticket=TICKET, history=inside)
    lifted = admit_anyway(again, decide(again))
    assert lifted.overridden is Reason.ALREADY_INSIDE and lifted.occupancy_delta == 1


def test_only_a_denied_entry_of_a_known_ticket_can_be_overridden() -> None:
    unknown = decide(ScanInput(CP, NOW, code_error=Reason.UNKNOWN_CODE))
    other_event = decide(ScanInput(CP, NOW, ticket=Ticket("att_2", "evt_2", "general")))
    admitted = decide(ScanInput(CP, NOW, ticket=TICKET))
    for verdict in (unknown, other_event, admitted):
        assert not can_override(verdict)
    with pytest.raises(OverrideInvalid):
        admit_anyway(ScanInput(CP, NOW, code_error=Reason.UNKNOWN_CODE), unknown)


def _timed(i: int, *, override: bool = False, new: bool = False) -> TimedReading:
    at = NOW + timedelta(minutes=i)
    return TimedReading(
        f"r{i}", "cp_a", "zone_main", Direction.IN, Status.ACCEPTED, at, (at,), CP,
        new=new, override=override,
    )  # fmt: skip


def test_an_override_is_never_contested_by_the_timeline() -> None:
    plain = redecide([_timed(0), _timed(1, new=True)], TICKET)
    assert [s.contested for s in plain.steps] == [None, Reason.ALREADY_INSIDE]
    overridden = redecide([_timed(0), _timed(1, new=True, override=True)], TICKET)
    assert [s.contested for s in overridden.steps] == [None, None]
    assert overridden.newly_contested() == []
    assert overridden.history.presence("zone_main").entries == 2  # still counted


def test_the_wire_carries_the_override_and_refuses_a_hostile_note() -> None:
    item = {
        "id": "0b9c6f1e-7c1d-4c52-9a55-0f0c3b8c2d11",
        "event_id": "evt_1",
        "checkpoint_id": "cp_a",
        "code": "DC1X",
        "scanned_at": "2026-05-15T21:00:00Z",
        "hlc": "1",
        "device_verdict": {"status": "accepted", "reason": "ok"},
        "override": True,
        "override_reason": "vip",
        "override_note": "Organizer's guest",
        "overridden_reason": "zone_full",
    }
    decoded = decode_item(encode(item), ScanItem)
    assert decoded.override and decoded.override_reason is OverrideReason.VIP
    assert decoded.overridden_reason is Reason.ZONE_FULL
    old = decode_item(encode({k: v for k, v in item.items() if "overrid" not in k}), ScanItem)
    assert not old.override and old.override_note is None
    for bad in ({"override_note": "a\x00b"}, {"override_note": "x" * 10_240},
                {"override_reason": "because"}, {"override": "yes"}):  # fmt: skip
        with pytest.raises(WireError):
            decode_item(encode({**item, **bad}), ScanItem)
