"""SPEC section 11 in the rules: repeat verdicts within the double-read window, and the detail
every denial carries (who, when, where, how many, where else)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.denials import DenialDetail, DenialDetailJSON, accepting_checkpoints, short_code
from shared.history import History, Reading, SeenVerdict, history_from_state, history_to_state
from shared.rules import (
    AttendeeStatus,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    Reason,
    ScanInput,
    Status,
    Ticket,
    ZoneOccupancy,
    decide,
    repeated,
)

NOW = datetime(2026, 5, 15, 21, 0, tzinfo=UTC)
CP = CheckpointPolicy("cp_a", "evt_1", zone_id="zone_main")
TICKET = Ticket("att_1", "evt_1", "general", first_name="Ana", last_name="Ruiz")
CODE = "DC1ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def scan(**changes: object) -> ScanInput:
    base = ScanInput(
        CP, NOW, ticket=TICKET, zone=ZoneOccupancy(100, 10), device_id="dev_a", code=CODE
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def inside_since(at: datetime, via: str = "cp_b", device: str = "dev_b") -> History:
    reading = Reading(via, "zone_main", Direction.IN, Status.ACCEPTED, at, device, Reason.OK)
    return History().apply(reading)


def then(first: ScanInput, seconds: float) -> ScanInput:
    """`first` decided and recorded, and the same code read again `seconds` later."""
    verdict = decide(first)
    assert verdict.record
    after = first.history.apply(verdict.as_reading(first.checkpoint.id, first.now, "dev_a"))
    return replace(first, history=after, now=first.now + timedelta(seconds=seconds))


# -- repeat verdicts ------------------------------------------------------------------------------
def test_a_denied_already_inside_read_again_keeps_its_reason_and_detail() -> None:
    first = scan(history=inside_since(NOW - timedelta(minutes=20)))
    denied = decide(first)
    again = decide(then(first, 1.5))
    assert denied.reason is again.reason is Reason.ALREADY_INSIDE
    assert again.repeat and not again.record and again.status is Status.DENIED
    assert again.detail == denied.detail
    assert again.detail is not None and again.detail.via_checkpoint_id == "cp_b"
    assert again.detail.inside_since == NOW - timedelta(minutes=20)
    assert again.detail.name == "Ana Ruiz" and again.detail.code == "DC1ABC…4567"


def test_an_admitted_guest_read_again_is_an_admitted_repeat_that_counts_nothing() -> None:
    first = scan()
    admitted = decide(first)
    again = decide(then(first, 2.9))
    assert admitted.occupancy_delta == 1 and not admitted.repeat
    assert again.status is Status.ACCEPTED and again.reason is Reason.OK
    assert again.repeat and not again.record and again.occupancy_delta == 0
    assert again.attendee == admitted.attendee and again.detail is None


def test_the_window_is_three_seconds_and_per_device() -> None:
    first = scan()
    assert decide(then(first, 3)).reason is Reason.ALREADY_INSIDE  # a new verdict
    other = replace(then(first, 1), device_id="dev_b")
    assert decide(other).reason is Reason.ALREADY_INSIDE and not decide(other).repeat
    api = replace(then(first, 1), device_id=None)  # an API key scan has no double reads
    assert not decide(api).repeat


def test_a_revoked_ticket_read_twice_is_one_reading() -> None:
    first = scan(ticket=replace(TICKET, status=AttendeeStatus.REVOKED))
    again = decide(then(first, 1))
    assert again.reason is Reason.REVOKED and again.repeat and not again.record


def test_an_exit_read_again_is_an_exit_repeat() -> None:
    first = scan(history=inside_since(NOW - timedelta(hours=1)), direction=Direction.OUT)
    out = decide(first)
    again = decide(then(first, 1))
    assert out.occupancy_delta == -1
    assert again.repeat and again.direction is Direction.OUT and again.occupancy_delta == 0


def test_a_read_the_other_way_is_new_and_an_old_history_a_plain_double_read() -> None:
    first = scan()
    other_way = decide(replace(then(first, 1), direction=Direction.OUT))
    assert other_way.reason is Reason.OK and other_way.record and other_way.occupancy_delta == -1
    elsewhere = decide(replace(then(first, 1), checkpoint=replace(CP, id="cp_b")))
    assert elsewhere.reason is Reason.ALREADY_INSIDE and not elsewhere.repeat
    legacy = History(last_by_device={"dev_a": NOW - timedelta(seconds=1)})  # no verdict kept
    assert decide(scan(history=legacy)).reason is Reason.DUPLICATE_SCAN


def test_last_verdicts_round_trip_and_old_states_still_load() -> None:
    first = scan()
    history = then(first, 0).history
    state = history_to_state(history)
    assert history_from_state(state) == history
    assert state["last_verdicts"]["dev_a"] == {
        "checkpoint_id": "cp_a",
        "direction": "in",
        "status": "accepted",
        "reason": "ok",
    }
    old = {k: v for k, v in state.items() if k not in ("last_verdicts", "last_entries")}
    loaded = history_from_state(old)
    assert loaded.last_verdicts == {} and loaded.last_by_device == history.last_by_device
    broken = {**state, "last_verdicts": {"dev_a": {"status": "maybe"}, "dev_b": 7}}
    assert history_from_state(broken).last_verdicts == {}


def test_a_reading_without_a_reason_forgets_the_device_verdict() -> None:
    history = History().seen_by(
        "dev_a", NOW, SeenVerdict("cp_a", Direction.IN, Status.DENIED, Reason.ZONE_FULL)
    )
    later = history.apply(Reading("cp_a", "zone_main", Direction.IN, Status.ACCEPTED, NOW))
    assert later.last_verdicts == history.last_verdicts  # no device: nothing about it changes
    plain = Reading("cp_a", "zone_main", Direction.IN, Status.ACCEPTED, NOW, "dev_a")
    assert history.apply(plain).last_verdicts == {}


def test_repeated_keeps_status_reason_and_detail() -> None:
    denied = decide(scan(zone=ZoneOccupancy(5, 5)))
    again = repeated(denied)
    assert (again.status, again.reason, again.detail) == (denied.status, ZONE_FULL, denied.detail)
    assert again.repeat and not again.record


ZONE_FULL = Reason.ZONE_FULL


# -- actionable denials ---------------------------------------------------------------------------
def test_every_denial_shows_the_code_shortened() -> None:
    assert short_code(CODE) == "DC1ABC…4567"
    assert short_code("VIP-0001") == "VIP-0001"
    assert short_code("abc\x00def\x07ghijklmnop") == "abc?de…mnop"
    unknown = decide(scan(ticket=None, code_error=Reason.UNKNOWN_CODE, code="NOBODY-12345678"))
    assert unknown.detail == DenialDetail(code="NOBODY…5678")


def test_malformed_and_forged_codes_are_named_as_such() -> None:
    malformed = decide(scan(ticket=None, code_error=Reason.MALFORMED_CODE, code="\x01"))
    forged = decide(scan(ticket=None, code_error=Reason.INVALID_SIGNATURE))
    assert (malformed.reason, malformed.message) == (Reason.MALFORMED_CODE, "Not a ticket")
    assert (forged.reason, forged.message) == (Reason.INVALID_SIGNATURE, "Forged or damaged ticket")


def test_max_entries_says_the_count_and_the_last_entry() -> None:
    cp = replace(CP, max_entries=2, anti_passback=False)
    history = History()
    for minutes in (50, 20):
        at = NOW - timedelta(minutes=minutes)
        history = history.apply(Reading("cp_a", "zone_main", Direction.IN, Status.ACCEPTED, at))
    verdict = decide(scan(checkpoint=cp, history=history))
    assert verdict.reason is Reason.MAX_ENTRIES_REACHED and verdict.detail is not None
    assert (verdict.detail.entries_used, verdict.detail.entries_allowed) == (2, 2)
    assert verdict.detail.last_entry_at == NOW - timedelta(minutes=20)


def test_reentry_not_allowed_says_when_they_last_came_in() -> None:
    cp = replace(CP, allow_reentry=False)
    history = inside_since(NOW - timedelta(hours=2), via="cp_a").apply(
        Reading("cp_x", "zone_main", Direction.OUT, Status.ACCEPTED, NOW - timedelta(hours=1))
    )
    verdict = decide(scan(checkpoint=cp, history=history))
    assert verdict.reason is Reason.REENTRY_NOT_ALLOWED and verdict.detail is not None
    assert verdict.detail.entries_used == 1
    assert verdict.detail.last_entry_at == NOW - timedelta(hours=2)


def test_zone_full_says_occupancy_and_capacity() -> None:
    verdict = decide(scan(zone=ZoneOccupancy(250, 251)))
    assert verdict.reason is Reason.ZONE_FULL and verdict.detail is not None
    assert (verdict.detail.occupancy, verdict.detail.capacity) == (251, 250)


def test_ticket_type_not_allowed_says_where_the_ticket_is_accepted() -> None:
    vip_only = replace(CP, allowed_ticket_types=frozenset({"vip"}))
    others = (
        vip_only,
        CheckpointPolicy("cp_main", "evt_1", allowed_ticket_types=frozenset({"general", "vip"})),
        CheckpointPolicy("cp_side", "evt_1"),  # every type
        CheckpointPolicy("cp_closed", "evt_1", active=False),
        CheckpointPolicy("cp_exit", "evt_1", direction=CheckpointDirection.OUT),
        CheckpointPolicy("cp_press", "evt_1", allowed_ticket_types=frozenset({"press"})),
    )
    verdict = decide(scan(checkpoint=vip_only, checkpoints=others))
    assert verdict.reason is Reason.TICKET_TYPE_NOT_ALLOWED and verdict.detail is not None
    assert verdict.detail.accepted_at == ("cp_main", "cp_side")
    assert verdict.detail.ticket_type == "general"
    named = verdict.detail.named({"cp_main": "Main entrance"})
    assert named.accepted_at_names == ("Main entrance", "cp_side")
    assert accepting_checkpoints("press", others, besides="cp_press") == ("cp_side",)


def test_already_inside_names_who_when_and_where() -> None:
    verdict = decide(scan(history=inside_since(NOW - timedelta(minutes=7), via="cp_b")))
    assert verdict.detail is not None
    named = verdict.detail.named({"cp_b": "Gate B"})
    assert (named.name, named.via_checkpoint_id, named.via_checkpoint_name) == (
        "Ana Ruiz",
        "cp_b",
        "Gate B",
    )
    assert named.inside_since == NOW - timedelta(minutes=7)
    assert verdict.inside_since == named.inside_since  # the fields from before stay


def test_validity_and_opening_windows_are_in_the_detail() -> None:
    early = decide(scan(ticket=replace(TICKET, valid_from=NOW + timedelta(hours=1))))
    assert early.detail is not None and early.detail.valid_from == NOW + timedelta(hours=1)
    closed = decide(scan(checkpoint=replace(CP, open_until=NOW - timedelta(minutes=1))))
    assert closed.reason is Reason.CHECKPOINT_CLOSED and closed.detail is not None
    assert closed.detail.closes_at == NOW - timedelta(minutes=1)


def test_an_admission_has_no_detail_and_the_json_has_every_field() -> None:
    assert decide(scan()).detail is None
    verdict = decide(scan(history=inside_since(NOW - timedelta(minutes=7))))
    assert verdict.detail is not None
    body = DenialDetailJSON.of(verdict.detail.named({})).model_dump(mode="json")
    assert set(body) == set(DenialDetailJSON.model_fields)
    assert body["inside_since"] == "2026-05-15T20:53:00Z"
    assert body["via_checkpoint_name"] == "cp_b" and body["accepted_at"] == []
