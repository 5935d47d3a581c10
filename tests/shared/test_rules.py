"""Every reason of SPEC section 6, every checkpoint option, and the properties of `decide`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.rules import (
    REASON_MESSAGES,
    AttendeeStatus,
    CheckpointDirection,
    CheckpointPolicy,
    Direction,
    History,
    Reading,
    Reason,
    ScanInput,
    Status,
    Ticket,
    VerdictWarning,
    ZoneOccupancy,
    decide,
    effective_direction,
    replay,
    zone_key,
)
from shared.timeline import TimedReading, redecide


def replay_with_deltas(readings: list[Reading]) -> tuple[History, list[int]]:
    """The timeline's fold: the history after `readings` (in order) and what each counts."""
    timeline = redecide(
        [
            TimedReading(str(i), r.checkpoint_id, r.zone_id, r.direction, r.status, r.at, (i,))
            for i, r in enumerate(readings)
        ],
        None,
    )
    return timeline.history, [step.delta for step in timeline.steps]


NOW = datetime(2026, 5, 15, 21, 0, tzinfo=UTC)
CP = CheckpointPolicy("cp_a", "evt_1", zone_id="zone_main")
TICKET = Ticket("att_1", "evt_1", "general", tags=frozenset({"press"}), first_name="Ana")


def inside_history(at: datetime = NOW - timedelta(minutes=30), via: str = "cp_b") -> History:
    return replay([Reading(via, "zone_main", Direction.IN, Status.ACCEPTED, at, "dev_b")])


def scan(**changes: object) -> ScanInput:
    base = ScanInput(CP, NOW, ticket=TICKET, zone=ZoneOccupancy(100, 10), device_id="dev_a")
    return replace(base, **changes)  # type: ignore[arg-type]


CASES: list[tuple[str, ScanInput, Reason]] = [
    ("malformed", scan(ticket=None, code_error=Reason.MALFORMED_CODE), Reason.MALFORMED_CODE),
    ("forged", scan(ticket=None, code_error=Reason.INVALID_SIGNATURE), Reason.INVALID_SIGNATURE),
    ("unknown", scan(ticket=None, code_error=Reason.UNKNOWN_CODE), Reason.UNKNOWN_CODE),
    ("no ticket, no reason", scan(ticket=None), Reason.UNKNOWN_CODE),
    ("other event", scan(ticket=replace(TICKET, event_id="evt_2")), Reason.WRONG_EVENT),
    ("inactive", scan(checkpoint=replace(CP, active=False)), Reason.CHECKPOINT_INACTIVE),
    (
        "before opening",
        scan(checkpoint=replace(CP, open_from=NOW + timedelta(minutes=1))),
        Reason.CHECKPOINT_CLOSED,
    ),
    (
        "after closing",
        scan(checkpoint=replace(CP, open_until=NOW - timedelta(seconds=1))),
        Reason.CHECKPOINT_CLOSED,
    ),
    ("cancelled", scan(ticket=replace(TICKET, status=AttendeeStatus.CANCELLED)), Reason.CANCELLED),
    ("revoked", scan(ticket=replace(TICKET, status=AttendeeStatus.REVOKED)), Reason.REVOKED),
    (
        "not yet valid",
        scan(ticket=replace(TICKET, valid_from=NOW + timedelta(hours=1))),
        Reason.NOT_YET_VALID,
    ),
    ("expired", scan(ticket=replace(TICKET, valid_until=NOW - timedelta(hours=1))), Reason.EXPIRED),
    (
        "type not allowed",
        scan(checkpoint=replace(CP, allowed_ticket_types=frozenset({"vip"}))),
        Reason.TICKET_TYPE_NOT_ALLOWED,
    ),
    (
        "tag required",
        scan(checkpoint=replace(CP, required_tags=frozenset({"crew", "artist"}))),
        Reason.TAG_REQUIRED,
    ),
    (
        "tag excluded",
        scan(checkpoint=replace(CP, excluded_tags=frozenset({"press"}))),
        Reason.TAG_EXCLUDED,
    ),
    (
        "just scanned",
        scan(history=History(last_by_device={"dev_a": NOW - timedelta(seconds=2)})),
        Reason.DUPLICATE_SCAN,
    ),
    ("already inside", scan(history=inside_history()), Reason.ALREADY_INSIDE),
    (
        "no re-entry",
        scan(
            checkpoint=replace(CP, allow_reentry=False),
            history=replay(
                [
                    Reading("cp_a", "zone_main", Direction.IN, Status.ACCEPTED, NOW, None),
                    Reading("cp_a", "zone_main", Direction.OUT, Status.ACCEPTED, NOW, None),
                ]
            ),
        ),
        Reason.REENTRY_NOT_ALLOWED,
    ),
    (
        "max entries",
        scan(
            checkpoint=replace(CP, max_entries=2, anti_passback=False),
            history=History(checkpoint_entries={"cp_a": 2}),
        ),
        Reason.MAX_ENTRIES_REACHED,
    ),
    ("zone full", scan(zone=ZoneOccupancy(10, 10)), Reason.ZONE_FULL),
    ("ok", scan(), Reason.OK),
]


@pytest.mark.parametrize(("name", "case", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_reason(name: str, case: ScanInput, reason: Reason) -> None:
    verdict = decide(case)
    assert verdict.reason is reason
    assert verdict.status is (Status.ACCEPTED if reason is Reason.OK else Status.DENIED)
    assert verdict.message == REASON_MESSAGES[reason]


def test_every_reason_is_covered_and_has_a_message() -> None:
    assert {reason for _, _, reason in CASES} == set(Reason)
    assert set(REASON_MESSAGES) == set(Reason)


def test_reason_order_is_the_contract() -> None:
    assert [r.value for r in Reason] == [
        "malformed_code", "invalid_signature", "unknown_code", "wrong_event",
        "checkpoint_inactive", "checkpoint_closed", "cancelled", "revoked", "not_yet_valid",
        "expired", "ticket_type_not_allowed", "tag_required", "tag_excluded", "duplicate_scan",
        "already_inside", "reentry_not_allowed", "max_entries_reached", "zone_full", "ok",
    ]  # fmt: skip


def test_earlier_reason_wins_when_several_apply() -> None:
    case = scan(
        ticket=replace(TICKET, status=AttendeeStatus.REVOKED, valid_until=NOW - timedelta(days=1)),
        checkpoint=replace(CP, open_until=NOW - timedelta(hours=1)),
        zone=ZoneOccupancy(1, 1),
    )
    assert decide(case).reason is Reason.CHECKPOINT_CLOSED


def test_accepted_entry_counts_and_carries_the_attendee() -> None:
    verdict = decide(scan(ticket=replace(TICKET, is_vip=True)))
    assert verdict.occupancy_delta == 1 and verdict.record
    assert verdict.attendee is not None and verdict.attendee.is_vip
    assert verdict.attendee.first_name == "Ana"


def test_already_inside_says_since_when_and_where() -> None:
    verdict = decide(scan(history=inside_history(NOW - timedelta(minutes=5), "cp_gate_b")))
    assert verdict.inside_since == NOW - timedelta(minutes=5)
    assert verdict.via_checkpoint_id == "cp_gate_b"


def test_exit_is_always_let_through_and_warns_when_not_inside() -> None:
    revoked = replace(TICKET, status=AttendeeStatus.REVOKED)
    closed = replace(CP, open_until=NOW - timedelta(hours=1))
    verdict = decide(scan(ticket=revoked, checkpoint=closed, direction=Direction.OUT))
    assert verdict.status is Status.ACCEPTED
    assert verdict.warnings == (VerdictWarning.NOT_INSIDE,)
    assert verdict.occupancy_delta == 0


def test_exit_of_someone_inside_frees_a_place() -> None:
    verdict = decide(scan(history=inside_history(), direction=Direction.OUT))
    assert verdict.accepted and verdict.warnings == () and verdict.occupancy_delta == -1


def test_exit_still_needs_a_real_ticket_and_an_active_gate() -> None:
    assert decide(scan(ticket=None, direction=Direction.OUT)).reason is Reason.UNKNOWN_CODE
    inactive = replace(CP, active=False)
    assert decide(scan(checkpoint=inactive, direction=Direction.OUT)).reason is (
        Reason.CHECKPOINT_INACTIVE
    )


def test_duplicate_is_not_recorded_and_only_at_the_same_device() -> None:
    recent = History(last_by_device={"dev_a": NOW - timedelta(seconds=1)})
    verdict = decide(scan(history=recent))
    assert verdict.reason is Reason.DUPLICATE_SCAN and not verdict.record
    assert decide(scan(history=recent, device_id="dev_b")).reason is Reason.OK
    stale = History(last_by_device={"dev_a": NOW - timedelta(seconds=3)})
    assert decide(scan(history=stale)).reason is Reason.OK


def test_denied_readings_feed_the_double_read_window() -> None:
    denied = decide(scan(zone=ZoneOccupancy(1, 1)))
    history = History().apply(denied.as_reading("cp_a", NOW, "dev_a"))
    again = decide(scan(history=history, now=NOW + timedelta(seconds=1)))
    assert again.reason is Reason.ZONE_FULL and again.repeat and not again.record
    assert history.presence("zone_main").entries == 0


def test_anti_passback_off_lets_an_inside_attendee_in_again() -> None:
    case = scan(checkpoint=replace(CP, anti_passback=False), history=inside_history())
    assert decide(case).reason is Reason.OK


def test_reentry_allowed_after_leaving() -> None:
    history = inside_history().apply(
        Reading("cp_b", "zone_main", Direction.OUT, Status.ACCEPTED, NOW, "dev_b")
    )
    assert decide(scan(history=history, now=NOW + timedelta(minutes=1))).reason is Reason.OK


def test_max_entries_counts_this_checkpoint_only() -> None:
    cp = replace(CP, max_entries=1, anti_passback=False)
    assert decide(scan(checkpoint=cp, history=inside_history(via="cp_b"))).reason is Reason.OK


def test_required_tags_are_any_of() -> None:
    cp = replace(CP, required_tags=frozenset({"crew", "press"}))
    assert decide(scan(checkpoint=cp)).reason is Reason.OK


def test_unlimited_zone_and_zoneless_checkpoint() -> None:
    assert decide(scan(zone=ZoneOccupancy(None, 10**6))).reason is Reason.OK
    zoneless = replace(CP, zone_id=None)
    verdict = decide(scan(checkpoint=zoneless, zone=None))
    assert verdict.accepted and verdict.occupancy_delta == 0 and verdict.zone_id is None
    assert zone_key(zoneless) == "cp:cp_a"


def test_windows_are_instants_whatever_the_time_zone() -> None:
    madrid = timezone(timedelta(hours=2))
    opens = datetime(2026, 5, 15, 23, 0, tzinfo=madrid)  # 21:00 UTC
    assert decide(scan(checkpoint=replace(CP, open_from=opens))).reason is Reason.OK
    assert (
        decide(scan(checkpoint=replace(CP, open_from=opens), now=NOW - timedelta(seconds=1))).reason
        is Reason.CHECKPOINT_CLOSED
    )


def test_validity_bounds_are_inclusive() -> None:
    assert decide(scan(ticket=replace(TICKET, valid_from=NOW, valid_until=NOW))).reason is (
        Reason.OK
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        decide(scan(now=datetime(2026, 5, 15, 21, 0)))


@pytest.mark.parametrize(
    ("gate", "requested", "expected"),
    [
        (CheckpointDirection.BOTH, None, Direction.IN),
        (CheckpointDirection.BOTH, Direction.OUT, Direction.OUT),
        (CheckpointDirection.IN, None, Direction.IN),
        (CheckpointDirection.OUT, Direction.OUT, Direction.OUT),
    ],
)
def test_effective_direction(
    gate: CheckpointDirection, requested: Direction | None, expected: Direction
) -> None:
    assert effective_direction(gate, requested) is expected


def test_a_fixed_gate_refuses_the_other_direction() -> None:
    with pytest.raises(ValueError):
        effective_direction(CheckpointDirection.IN, Direction.OUT)


# ---- properties -----------------------------------------------------------------------------

moves = st.lists(
    st.tuples(
        st.integers(0, 2),  # which attendee
        st.sampled_from([("cp_in", Direction.IN), ("cp_out", Direction.OUT), ("cp_both", None)]),
        st.sampled_from(list(Direction)),
        st.integers(0, 10),  # seconds since the previous reading
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(moves, st.integers(1, 3), st.booleans())
def test_occupancy_never_negative_with_anti_passback(
    steps: list[tuple[int, tuple[str, Direction | None], Direction, int]],
    capacity: int,
    reentry: bool,
) -> None:
    histories = [History() for _ in range(3)]
    occupancy, now = 0, NOW
    for who, (cp_id, fixed), chosen, gap in steps:
        now += timedelta(seconds=gap)
        direction = fixed or chosen
        checkpoint = CheckpointPolicy(
            cp_id,
            "evt_1",
            zone_id="zone_main",
            direction=CheckpointDirection(direction.value) if fixed else CheckpointDirection.BOTH,
            allow_reentry=reentry,
        )
        ticket = Ticket(f"att_{who}", "evt_1", "general")
        verdict = decide(
            ScanInput(
                checkpoint,
                now,
                direction,
                ticket=ticket,
                history=histories[who],
                zone=ZoneOccupancy(capacity, occupancy),
                device_id=f"dev_{cp_id}",
            )
        )
        if verdict.record:
            histories[who] = histories[who].apply(verdict.as_reading(cp_id, now, f"dev_{cp_id}"))
        if verdict.accepted:
            occupancy += verdict.occupancy_delta
        assert 0 <= occupancy <= capacity
        assert occupancy == sum(h.presence("zone_main").inside for h in histories)


tickets = st.builds(
    Ticket,
    attendee_id=st.text(max_size=5),
    event_id=st.sampled_from(["evt_1", "evt_2"]),
    ticket_type=st.sampled_from(["general", "vip"]),
    status=st.sampled_from(list(AttendeeStatus)),
    tags=st.frozensets(st.sampled_from(["press", "crew", "vip"])),
    valid_from=st.none() | st.just(NOW + timedelta(hours=1)),
    valid_until=st.none() | st.just(NOW - timedelta(hours=1)),
)
policies = st.builds(
    CheckpointPolicy,
    id=st.just("cp_a"),
    event_id=st.just("evt_1"),
    zone_id=st.none() | st.just("zone_main"),
    active=st.booleans(),
    allowed_ticket_types=st.frozensets(st.sampled_from(["general", "vip"])),
    required_tags=st.frozensets(st.sampled_from(["press", "crew"])),
    excluded_tags=st.frozensets(st.sampled_from(["press", "vip"])),
    max_entries=st.none() | st.integers(0, 3),
    allow_reentry=st.booleans(),
    anti_passback=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    policies,
    st.none() | tickets,
    st.sampled_from(list(Reason)) | st.none(),
    st.sampled_from(list(Direction)),
    st.builds(ZoneOccupancy, st.none() | st.integers(0, 5), st.integers(0, 5)),
)
def test_decide_is_total_and_deterministic(
    policy: CheckpointPolicy,
    ticket: Ticket | None,
    code_error: Reason | None,
    direction: Direction,
    zone: ZoneOccupancy,
) -> None:
    case = ScanInput(policy, NOW, direction, ticket, code_error, inside_history(), zone, "dev_a")
    first, second = decide(case), decide(case)
    assert first == second
    assert (first.status is Status.ACCEPTED) == (first.reason is Reason.OK)
    if ticket is None:
        assert first.reason in {Reason.MALFORMED_CODE, Reason.INVALID_SIGNATURE,
                                Reason.UNKNOWN_CODE}  # fmt: skip


def test_replay_with_deltas_counts_each_person_once_per_stay() -> None:
    def at(
        minutes: int,
        direction: Direction,
        status: Status = Status.ACCEPTED,
        zone: str | None = "zone_main",
    ) -> Reading:
        return Reading("cp_a", zone, direction, status, NOW + timedelta(minutes=minutes))

    history, deltas = replay_with_deltas(
        [
            at(0, Direction.OUT),  # not inside: no change
            at(1, Direction.IN),  # +1
            at(2, Direction.IN, Status.DENIED),  # denied: no change
            at(3, Direction.IN),  # admitted twice (offline gates): +1
            at(4, Direction.OUT),  # -1
            at(5, Direction.OUT),  # not inside any more: 0
            at(6, Direction.IN, zone=None),  # zoneless (presence at "cp:cp_a"): never counts
        ]
    )
    assert deltas == [0, 1, 0, 1, -1, 0, 0]
    assert not history.presence("zone_main").inside
    assert history.presence("zone_main").entries == 2
    assert history.checkpoint_entries["cp_a"] == 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(Direction)), st.sampled_from(list(Status))), max_size=40
    )
)
def test_replayed_occupancy_matches_presence(steps: list[tuple[Direction, Status]]) -> None:
    readings = [
        Reading("cp_a", "zone_main", d, s, NOW + timedelta(seconds=i))
        for i, (d, s) in enumerate(steps)
    ]
    history, deltas = replay_with_deltas(readings)
    assert sum(deltas) >= 0
    inside = history.presence("zone_main").inside
    assert sum(deltas) >= (1 if inside else 0)
