"""Hybrid logical clock: monotonic, merges remote clocks, bounded drift, sortable encoding."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.hlc import HLC, ClockDriftError, receive, tick

walls = st.integers(min_value=0, max_value=10**15 - 1)
counters = st.integers(min_value=0, max_value=10**5 - 1)
nodes = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
)
clocks = st.builds(HLC, walls, counters, nodes)


def test_tick_follows_physical_time_when_it_advances() -> None:
    assert tick(HLC(1_000, 7, "a"), 2_000) == HLC(2_000, 0, "a")


def test_tick_stays_monotonic_when_physical_time_goes_backwards() -> None:
    clock = HLC.zero("dev_a")
    stamps = []
    for now in [5_000, 5_000, 4_000, 3_000, 5_000, 6_000, 1]:
        clock = tick(clock, now)
        stamps.append(clock)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert stamps[2] == HLC(5_000, 2, "dev_a")
    assert stamps[-1] == HLC(6_000, 1, "dev_a")


@given(clock=clocks, times=st.lists(st.integers(min_value=0, max_value=10**13), max_size=30))
def test_tick_is_strictly_increasing(clock: HLC, times: list[int]) -> None:
    clock = HLC(min(clock.wall_ms, 10**14), clock.counter, clock.node)
    for now in times:
        nxt = tick(clock, now)
        assert (nxt.wall_ms, nxt.counter) > (clock.wall_ms, clock.counter)
        assert nxt.wall_ms >= now
        clock = nxt


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    assert tick(HLC(10, 99_999, "a"), 5) == HLC(11, 0, "a")


@pytest.mark.parametrize(
    ("local", "remote", "now", "expected"),
    [
        # physical time wins
        (HLC(100, 3, "a"), HLC(90, 9, "b"), 200, HLC(200, 0, "a")),
        # remote ahead of both: adopt its wall, counter + 1
        (HLC(100, 3, "a"), HLC(150, 9, "b"), 120, HLC(150, 10, "a")),
        # local ahead of both
        (HLC(150, 3, "a"), HLC(100, 9, "b"), 120, HLC(150, 4, "a")),
        # same wall: max counter + 1
        (HLC(150, 3, "a"), HLC(150, 9, "b"), 120, HLC(150, 10, "a")),
        (HLC(150, 12, "a"), HLC(150, 9, "b"), 150, HLC(150, 13, "a")),
    ],
)
def test_receive_merges(local: HLC, remote: HLC, now: int, expected: HLC) -> None:
    assert receive(local, remote, now) == expected


@given(local=clocks, remote=clocks, now=walls)
def test_receive_is_after_both_clocks(local: HLC, remote: HLC, now: int) -> None:
    try:
        merged = receive(local, remote, now, max_drift_ms=10**16)
    except ValueError:  # wall overflow at the very top of the range
        return
    assert (merged.wall_ms, merged.counter) > (local.wall_ms, local.counter)
    assert (merged.wall_ms, merged.counter) > (remote.wall_ms, remote.counter)
    assert merged.wall_ms >= now
    assert merged.node == local.node


def test_receive_refuses_a_remote_clock_too_far_ahead() -> None:
    with pytest.raises(ClockDriftError) as info:
        receive(HLC(0, 0, "a"), HLC(1_000 + 60_001, 0, "b"), 1_000)
    assert info.value.drift_ms == 60_001
    assert receive(HLC(0, 0, "a"), HLC(61_000, 0, "b"), 1_000) == HLC(61_000, 1, "a")
    assert receive(HLC(0, 0, "a"), HLC(1_500, 0, "b"), 1_000, max_drift_ms=500).wall_ms == 1_500
    with pytest.raises(ClockDriftError):
        receive(HLC(0, 0, "a"), HLC(1_501, 0, "b"), 1_000, max_drift_ms=500)


def test_encode_example_and_parse() -> None:
    clock = HLC(1_747_000_000_000, 3, "dev_abc-1")
    assert clock.encode() == "001747000000000-00003-dev_abc-1"
    assert HLC.parse(clock.encode()) == clock


@given(clocks)
def test_parse_inverts_encode(clock: HLC) -> None:
    assert HLC.parse(clock.encode()) == clock


@given(a=clocks, b=clocks)
def test_encoded_order_matches_clock_order(a: HLC, b: HLC) -> None:
    assert (a.encode() < b.encode()) == (
        (a.wall_ms, a.counter, a.node) < (b.wall_ms, b.counter, b.node)
    )
    assert (a.encode() < b.encode()) == (a < b)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "1-2-a",
        "00000000000000a-00000-n",
        "000000000000001-00000-",
        "000000000000001-00000-has space",
        "000000000000001-0000-n",
        "-000000000000001-00000-n",
    ],
)
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        HLC.parse(text)


@pytest.mark.parametrize(
    ("wall", "counter", "node"),
    [(-1, 0, "a"), (10**15, 0, "a"), (0, -1, "a"), (0, 10**5, "a"), (0, 0, ""), (0, 0, "a b")],
)
def test_out_of_range_clocks_are_refused(wall: int, counter: int, node: str) -> None:
    with pytest.raises(ValueError):
        HLC(wall, counter, node)


@given(st.text(max_size=60))
def test_parse_any_text_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        HLC.parse(text)
