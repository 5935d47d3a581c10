"""An attendee's history: the fold of their recorded readings (presence per zone, entries and the
last entry per checkpoint, the last reading per device and the verdict it had) and its stored
form, as the server keeps it per attendee and pulls carry it to gates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from shared.kinds import Direction, Reason, Status
from shared.policy import presence_key

__all__ = [
    "History",
    "Reading",
    "SeenVerdict",
    "ZonePresence",
    "history_from_state",
    "history_to_state",
    "occupancy_change",
    "replay",
]


@dataclass(frozen=True, slots=True)
class ZonePresence:
    """An attendee's state in one zone: inside or not, since when and through which checkpoint."""

    inside: bool = False
    since: datetime | None = None
    via_checkpoint_id: str | None = None
    entries: int = 0
    last_scan_at: datetime | None = None


_NOWHERE = ZonePresence()
_EMPTY: Mapping[str, ZonePresence] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reading:
    """One recorded reading of an attendee, as the fold consumes it (`status` as recorded)."""

    checkpoint_id: str
    zone_id: str | None
    direction: Direction
    status: Status
    at: datetime
    device_id: str | None = None
    reason: Reason | None = None  # the verdict's reason, when known (a repeat shows it again)

    @property
    def key(self) -> str:
        return presence_key(self.checkpoint_id, self.zone_id)


@dataclass(frozen=True, slots=True)
class SeenVerdict:
    """The verdict of a device's last reading of an attendee: what a repeat within the
    double-read window shows again (SPEC section 11)."""

    checkpoint_id: str
    direction: Direction
    status: Status
    reason: Reason


@dataclass(frozen=True, slots=True)
class History:
    """What the rules need to know of an attendee's past readings, folded from them in order."""

    zones: Mapping[str, ZonePresence] = field(default_factory=lambda: _EMPTY)
    checkpoint_entries: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    last_by_device: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))
    last_verdicts: Mapping[str, SeenVerdict] = field(default_factory=lambda: MappingProxyType({}))
    last_entries: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))

    def presence(self, key: str) -> ZonePresence:
        return self.zones.get(key, _NOWHERE)

    @property
    def entries(self) -> int:
        """Accepted entries anywhere (the attendee's `entries`)."""
        return sum(self.checkpoint_entries.values())

    @property
    def last_scan_at(self) -> datetime | None:
        """When an accepted reading last moved the attendee, anywhere."""
        return max((z.last_scan_at for z in self.zones.values() if z.last_scan_at), default=None)

    def seen_by(self, device_id: str, at: datetime, verdict: SeenVerdict | None = None) -> History:
        """The same history with a later reading by `device_id` at `at` (for the double-read
        window), and the verdict it had when known."""
        verdicts = {k: v for k, v in self.last_verdicts.items() if k != device_id}
        if verdict is not None:
            verdicts[device_id] = verdict
        return replace(
            self, last_by_device={**self.last_by_device, device_id: at}, last_verdicts=verdicts
        )

    def apply(self, reading: Reading) -> History:
        """The history after one more reading (denied readings only feed the debounce)."""
        seen = self
        if reading.device_id is not None:
            verdict = None
            if reading.reason is not None:
                verdict = SeenVerdict(
                    reading.checkpoint_id, reading.direction, reading.status, reading.reason
                )
            seen = self.seen_by(reading.device_id, reading.at, verdict)
        if reading.status is not Status.ACCEPTED:
            return seen
        key = reading.key
        before = self.presence(key)
        entries = dict(self.checkpoint_entries)
        last_entries = self.last_entries
        if reading.direction is Direction.IN:
            entries[reading.checkpoint_id] = entries.get(reading.checkpoint_id, 0) + 1
            last_entries = {**last_entries, reading.checkpoint_id: reading.at}
            after = ZonePresence(
                True, reading.at, reading.checkpoint_id, before.entries + 1, reading.at
            )
        else:
            after = ZonePresence(
                False, reading.at, reading.checkpoint_id, before.entries, reading.at
            )
        return History(
            {**self.zones, key: after},
            entries,
            seen.last_by_device,
            seen.last_verdicts,
            last_entries,
        )


def occupancy_change(
    accepted: bool, direction: Direction, zone_id: str | None, inside_before: bool
) -> int:
    """What a reading adds to its zone's occupancy (SPEC section 6: accepted entries minus
    accepted exits): an accepted entry +1, an accepted exit of someone inside -1 (an exit of
    someone not seen entering counts 0, so occupancy never goes negative), anything else 0."""
    if not accepted or zone_id is None:
        return 0
    if direction is Direction.IN:
        return 1
    return -1 if inside_before else 0


def replay(readings: Iterable[Reading], base: History | None = None) -> History:
    """Fold readings (in the order they happened) into a history, on top of `base`."""
    history = base or History()
    for reading in readings:
        history = history.apply(reading)
    return history


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _at(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def history_to_state(history: History) -> dict[str, Any]:
    """A JSON-ready form of a history, as the server stores it per attendee and pulls carry it."""
    return {
        "zones": {
            key: {
                "inside": z.inside,
                "since": _iso(z.since),
                "via_checkpoint_id": z.via_checkpoint_id,
                "entries": z.entries,
                "last_scan_at": _iso(z.last_scan_at),
            }
            for key, z in history.zones.items()
        },
        "checkpoint_entries": dict(history.checkpoint_entries),
        "last_by_device": {dev: at.isoformat() for dev, at in history.last_by_device.items()},
        "last_verdicts": {
            dev: {
                "checkpoint_id": v.checkpoint_id,
                "direction": v.direction.value,
                "status": v.status.value,
                "reason": v.reason.value,
            }
            for dev, v in history.last_verdicts.items()
        },
        "last_entries": {cp: at.isoformat() for cp, at in history.last_entries.items()},
    }


def _seen(value: Any) -> SeenVerdict | None:
    """A stored last verdict, or None for one this version cannot read."""
    try:
        return SeenVerdict(
            str(value["checkpoint_id"]),
            Direction(value["direction"]),
            Status(value["status"]),
            Reason(value["reason"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def history_from_state(state: Mapping[str, Any]) -> History:
    """The inverse of `history_to_state` (an empty or missing state is an empty history; a state
    stored before last verdicts and entries were kept has none)."""
    zones = {
        key: ZonePresence(
            bool(z.get("inside")),
            _at(z.get("since")),
            z.get("via_checkpoint_id"),
            int(z.get("entries", 0)),
            _at(z.get("last_scan_at")),
        )
        for key, z in (state.get("zones") or {}).items()
    }
    last = {
        dev: datetime.fromisoformat(at) for dev, at in (state.get("last_by_device") or {}).items()
    }
    verdicts = {
        dev: seen
        for dev, value in (state.get("last_verdicts") or {}).items()
        if (seen := _seen(value)) is not None
    }
    entries = {
        cp: datetime.fromisoformat(at) for cp, at in (state.get("last_entries") or {}).items()
    }
    return History(zones, dict(state.get("checkpoint_entries") or {}), last, verdicts, entries)
