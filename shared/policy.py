"""A checkpoint's rules as the decision takes them, and the small decisions about places: which
direction a scan counts in, where presence is tracked, and when a zone has just become full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.kinds import CheckpointDirection, Direction

__all__ = [
    "CheckpointPolicy",
    "WrongDirection",
    "ZoneOccupancy",
    "allowed_directions",
    "checkpoint_policy",
    "counts_occupancy",
    "effective_direction",
    "presence_key",
    "zone_filled",
    "zone_key",
]

_ZONELESS = "cp:"


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """A checkpoint's rules (SPEC section 6); windows are aware instants."""

    id: str
    event_id: str
    zone_id: str | None = None
    direction: CheckpointDirection = CheckpointDirection.IN
    active: bool = True
    allowed_ticket_types: frozenset[str] = frozenset()
    required_tags: frozenset[str] = frozenset()
    excluded_tags: frozenset[str] = frozenset()
    max_entries: int | None = None
    allow_reentry: bool = True
    anti_passback: bool = True
    open_from: datetime | None = None
    open_until: datetime | None = None


def _frozen(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(values or ())


def checkpoint_policy(source: Any) -> CheckpointPolicy:
    """The rules' view of anything with a checkpoint's fields by name: the server's row, the
    gate's cached `CheckpointRow`. The one mapping from stored checkpoint to policy."""
    return CheckpointPolicy(
        id=source.id,
        event_id=source.event_id,
        zone_id=source.zone_id or None,
        direction=CheckpointDirection(source.direction),
        active=bool(source.active),
        allowed_ticket_types=_frozen(source.allowed_ticket_types),
        required_tags=_frozen(source.required_tags),
        excluded_tags=_frozen(source.excluded_tags),
        max_entries=source.max_entries,
        allow_reentry=bool(source.allow_reentry),
        anti_passback=bool(source.anti_passback),
        open_from=source.open_from,
        open_until=source.open_until,
    )


class WrongDirection(ValueError):
    """A direction asked at a checkpoint that only scans the other way."""


def allowed_directions(checkpoint: CheckpointDirection) -> tuple[Direction, ...]:
    """The directions a scan may count in at a checkpoint: both at a `both` gate (the operator
    picks, `in` first), else the gate's own."""
    if checkpoint is CheckpointDirection.BOTH:
        return (Direction.IN, Direction.OUT)
    return (Direction(checkpoint.value),)


def effective_direction(
    checkpoint: CheckpointDirection, requested: Direction | None, *, strict: bool = True
) -> Direction:
    """The direction a scan counts in: a fixed gate's own, or the operator's pick at a `both` gate.
    Asking a fixed gate for the other way raises `WrongDirection`, or with `strict=False` (a gate
    that follows its checkpoint) answers the gate's own.

    >>> effective_direction(CheckpointDirection.BOTH, Direction.OUT)
    <Direction.OUT: 'out'>
    """
    allowed = allowed_directions(checkpoint)
    if requested is None or requested in allowed:
        return requested or allowed[0]
    if strict:
        raise WrongDirection(f"this checkpoint only scans {allowed[0].value}")
    return allowed[0]


def presence_key(checkpoint_id: str, zone_id: str | None) -> str:
    """Where presence is tracked: the zone, or the checkpoint itself when it has no zone."""
    return zone_id or f"{_ZONELESS}{checkpoint_id}"


def zone_key(checkpoint: CheckpointPolicy) -> str:
    return presence_key(checkpoint.id, checkpoint.zone_id)


def counts_occupancy(key: str) -> bool:
    """Whether presence under `key` is a real zone's (a zoneless checkpoint counts nobody)."""
    return not key.startswith(_ZONELESS)


@dataclass(frozen=True, slots=True)
class ZoneOccupancy:
    capacity: int | None
    occupancy: int

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.occupancy >= self.capacity


def zone_filled(occupancy_before: int, change: int, capacity: int | None) -> bool:
    """Whether `change` took a zone from below its capacity to it or beyond (the moment to
    announce `zone.capacity_reached`, once).

    >>> zone_filled(4, 1, 5), zone_filled(5, 1, 5), zone_filled(3, 3, 5)
    (True, False, True)
    """
    return capacity is not None and occupancy_before < capacity <= occupancy_before + change
