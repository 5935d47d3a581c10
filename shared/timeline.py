"""An attendee's timeline re-decided: every recorded reading in the order it happened, folded into
presence and entries, with what each reading counts towards its zone and which admissions the
rules deny at their place (a conflict). The server calls it when readings arrive late or are
voided; a gate calls it on top of the state it pulled, for its own readings not reflected yet.

    verdict = decide_at(readings, new, ticket)      # a new reading at its place in time
    timeline = redecide(readings, ticket)           # everything again, in order
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.history import History, Reading, occupancy_change
from shared.kinds import HISTORY_REASONS, Direction, Reason, Status
from shared.policy import CheckpointPolicy, ZoneOccupancy
from shared.resolution import status_at
from shared.rules import ScanInput, Ticket, Verdict, decide

__all__ = [
    "Placed",
    "Step",
    "TimedReading",
    "Timeline",
    "decide_at",
    "place",
    "redecide",
    "with_zone",
]


@dataclass(frozen=True, slots=True)
class TimedReading:
    """One recorded reading of an attendee. `status` is as recorded (a device's admission is a
    fact); `order` sorts readings as they happened (corrected time, then a tie-breaker);
    `checkpoint` is None when its checkpoint is gone (the reading still counts, it is not
    re-decided); `delta` is what it counts now; `conflict` is the kind of the open conflict on it
    and `settled` says one was opened and resolved already; `new`, whether it arrives now (every
    reason of a new reading counts, while an admission recorded earlier is only contested again
    for reasons that depend on the history); `override`, a supervisor's admission of someone
    the rules denied: never contested, so never a conflict by itself)."""

    id: str
    checkpoint_id: str
    zone_id: str | None
    direction: Direction
    status: Status
    at: datetime
    order: tuple[Any, ...]
    checkpoint: CheckpointPolicy | None = None
    device_id: str | None = None
    delta: int = 0
    conflict: str | None = None
    settled: bool = False
    new: bool = False
    override: bool = False

    @property
    def reading(self) -> Reading:
        return Reading(
            self.checkpoint_id, self.zone_id, self.direction, self.status, self.at, self.device_id
        )


@dataclass(frozen=True, slots=True)
class Step:
    """A reading after re-decision: what the rules say at its place and what it counts."""

    reading: TimedReading
    verdict: Verdict | None
    delta: int

    @property
    def contested(self) -> Reason | None:
        """Why this admission should not have been, or None (see `TimedReading.new`)."""
        verdict = self.verdict
        if self.reading.status is not Status.ACCEPTED or verdict is None or verdict.accepted:
            return None
        if self.reading.override:
            return None
        if verdict.reason is Reason.DUPLICATE_SCAN:
            return None
        if not self.reading.new and verdict.reason not in HISTORY_REASONS:
            return None
        return verdict.reason


@dataclass(frozen=True, slots=True)
class Timeline:
    history: History
    steps: tuple[Step, ...]

    def zone_changes(self) -> dict[str, int]:
        """How much each zone's occupancy changes when the new deltas replace the stored ones."""
        changes: dict[str, int] = {}
        for step in self.steps:
            zone = step.reading.zone_id
            if zone is not None and step.delta != step.reading.delta:
                changes[zone] = changes.get(zone, 0) + step.delta - step.reading.delta
        return {zone: change for zone, change in changes.items() if change}

    def newly_contested(self) -> list[Step]:
        """Admissions the rules now deny at their place that carry no conflict yet."""
        return [
            s
            for s in self.steps
            if s.contested is not None and s.reading.conflict is None and not s.reading.settled
        ]

    def no_longer_contested(self) -> list[Step]:
        """Admissions with an open conflict about their history that the rules, deciding them
        again, no longer deny for any such reason (a reading that arrived late explains them:
        an exit at another gate recorded before, say)."""
        history_kinds = {reason.value for reason in HISTORY_REASONS}
        return [
            s
            for s in self.steps
            if s.verdict is not None
            and s.reading.conflict in history_kinds
            and s.contested not in HISTORY_REASONS
        ]


def _verdict(
    reading: TimedReading,
    ticket: Ticket | None,
    history: History,
    changed_at: datetime | None,
    zone: ZoneOccupancy | None = None,
    code_error: Reason | None = None,
) -> Verdict | None:
    if reading.checkpoint is None:
        return None
    at_then = status_at(ticket, changed_at, reading.at) if ticket is not None else None
    return decide(
        ScanInput(
            reading.checkpoint,
            reading.at,
            reading.direction,
            ticket=at_then,
            code_error=code_error or (None if ticket is not None else Reason.UNKNOWN_CODE),
            history=history,
            zone=zone,
        )
    )


def redecide(
    readings: Iterable[TimedReading],
    ticket: Ticket | None,
    *,
    base: History | None = None,
    changed_at: datetime | None = None,
    since: tuple[Any, ...] | None = None,
) -> Timeline:
    """Fold `readings` (any order: they are sorted by `order`) on top of `base`, re-deciding each
    at its place. `changed_at` is when the ticket's status last changed. With `since` (an
    `order`), readings before it are only folded, not decided again: nothing before the
    earliest change can have changed (it keeps a push linear in what it brings)."""
    history = base or History()
    steps = []
    for reading in sorted(readings, key=lambda r: r.order):
        accepted = reading.status is Status.ACCEPTED
        # only an admission can be contested: a denied reading needs no verdict
        again = accepted and (since is None or reading.order >= since)
        verdict = _verdict(reading, ticket, history, changed_at) if again else None
        fact = reading.reading
        inside = history.presence(fact.key).inside
        delta = occupancy_change(accepted, reading.direction, reading.zone_id, inside)
        steps.append(Step(reading, verdict, delta))
        history = history.apply(fact)
    return Timeline(history, tuple(steps))


@dataclass(frozen=True, slots=True)
class Placed:
    """A new reading at its place: the rules' verdict, and what it counts as recorded."""

    verdict: Verdict | None
    delta: int
    history: History  # before it


def decide_at(
    readings: Sequence[TimedReading],
    new: TimedReading,
    ticket: Ticket | None,
    *,
    base: History | None = None,
    changed_at: datetime | None = None,
    zone: ZoneOccupancy | None = None,
    code_error: Reason | None = None,
) -> Placed:
    """What the rules say of `new` at its place among `readings` (those before it in `order`),
    with the zone as it is when the reading arrives (`code_error`: why the code named nobody)."""
    history = base or History()
    for reading in sorted((r for r in readings if r.order < new.order), key=lambda r: r.order):
        history = history.apply(reading.reading)
    verdict = _verdict(new, ticket, history, changed_at, zone, code_error)
    inside = history.presence(new.reading.key).inside
    delta = occupancy_change(new.status is Status.ACCEPTED, new.direction, new.zone_id, inside)
    return Placed(verdict, delta, history)


def place(
    readings: Sequence[TimedReading],
    news: Sequence[TimedReading],
    ticket: Ticket | None,
    *,
    base: History | None = None,
    changed_at: datetime | None = None,
) -> dict[str, Placed]:
    """Every one of `news` at its place among `readings` and each other, in one ordered pass
    (linear in the attendee's history, however many arrive at once): the verdict before any
    zone is considered, what it counts, and the history before it. `with_zone` then applies
    the zone as it is when each arrives."""
    history = base or History()
    fresh = {n.id for n in news}
    placed: dict[str, Placed] = {}
    for reading in sorted([*readings, *news], key=lambda r: r.order):
        fact = reading.reading
        if reading.id in fresh:
            verdict = _verdict(reading, ticket, history, changed_at)
            inside = history.presence(fact.key).inside
            accepted = reading.status is Status.ACCEPTED
            delta = occupancy_change(accepted, reading.direction, reading.zone_id, inside)
            placed[reading.id] = Placed(verdict, delta, history)
        history = history.apply(fact)
    return placed


def with_zone(
    placed: Placed,
    new: TimedReading,
    ticket: Ticket | None,
    zone: ZoneOccupancy | None,
    *,
    changed_at: datetime | None = None,
) -> Verdict | None:
    """`placed`'s verdict with the zone as the reading finds it. `zone_full` is the last rule,
    so only an entry the other rules admit into a full zone can change."""
    verdict = placed.verdict
    if zone is None or not zone.full or verdict is None or not verdict.accepted:
        return verdict
    if new.direction is not Direction.IN:
        return verdict
    return _verdict(new, ticket, placed.history, changed_at, zone)
