"""Hybrid logical clock (Kulkarni et al.) that devices stamp scans with (SPEC section 7).

Pure functions: the caller passes the physical time in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HLC", "ClockDriftError", "receive", "tick"]

_MAX_WALL_MS = 10**15 - 1  # 15 digits: good until the year 33658
_MAX_COUNTER = 10**5 - 1
_NODE_RE = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
_ENCODED_RE = re.compile(r"([0-9]{15})-([0-9]{5})-(.*)", re.DOTALL)


class ClockDriftError(Exception):
    """A remote clock is further ahead of our physical time than we accept."""

    def __init__(self, remote_wall_ms: int, now_ms: int, max_drift_ms: int) -> None:
        self.drift_ms = remote_wall_ms - now_ms
        self.max_drift_ms = max_drift_ms
        super().__init__(
            f"remote clock is {self.drift_ms} ms ahead of local time (max {max_drift_ms} ms)"
        )


@dataclass(frozen=True, slots=True, order=True)
class HLC:
    """A timestamp ``(wall_ms, counter, node)``; compares and encodes in causal order."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        for name, value, top in (
            ("wall_ms", self.wall_ms, _MAX_WALL_MS),
            ("counter", self.counter, _MAX_COUNTER),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ValueError(f"HLC {name} must be an int in 0..{top}")
        if not isinstance(self.node, str) or _NODE_RE.fullmatch(self.node) is None:
            raise ValueError("HLC node must be 1-128 printable ASCII characters without spaces")

    @classmethod
    def zero(cls, node: str) -> HLC:
        """The clock of a node that has seen nothing yet."""
        return cls(0, 0, node)

    def encode(self) -> str:
        """``"000001747000000-00003-dev_x"``: string order equals HLC order."""
        return f"{self.wall_ms:015d}-{self.counter:05d}-{self.node}"

    @classmethod
    def parse(cls, s: str) -> HLC:
        """Inverse of ``encode``; ValueError on anything else."""
        match = _ENCODED_RE.fullmatch(s) if isinstance(s, str) else None
        if match is None:
            raise ValueError(f"not an encoded HLC: {s!r:.80}")
        return cls(int(match[1]), int(match[2]), match[3])


def _advance(wall_ms: int, counter: int, node: str) -> HLC:
    # A counter that would overflow its 5 digits borrows the next millisecond: order is kept.
    if counter > _MAX_COUNTER:
        return HLC(wall_ms + 1, 0, node)
    return HLC(wall_ms, counter, node)


def tick(clock: HLC, now_ms: int) -> HLC:
    """The timestamp for a local or send event: ``clock = tick(clock, now_ms)``."""
    if now_ms > clock.wall_ms:
        return HLC(now_ms, 0, clock.node)
    return _advance(clock.wall_ms, clock.counter + 1, clock.node)


def receive(clock: HLC, remote: HLC, now_ms: int, *, max_drift_ms: int = 60_000) -> HLC:
    """Merge a remote timestamp into ours; ClockDriftError if it is too far in our future."""
    if remote.wall_ms - now_ms > max_drift_ms:
        raise ClockDriftError(remote.wall_ms, now_ms, max_drift_ms)
    wall = max(clock.wall_ms, remote.wall_ms, now_ms)
    if wall == clock.wall_ms == remote.wall_ms:
        counter = max(clock.counter, remote.counter) + 1
    elif wall == clock.wall_ms:
        counter = clock.counter + 1
    elif wall == remote.wall_ms:
        counter = remote.counter + 1
    else:
        counter = 0
    return _advance(wall, counter, clock.node)
