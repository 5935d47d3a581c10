"""An attendee's history: the fold of their recorded readings (presence per zone, entries per
checkpoint, the last reading per device) and its stored form, as the server keeps it per
attendee and pulls carry it to gates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from shared.kinds import Direction, Status
from shared.policy import presence_key

__all__ = [
    "History",
    "Reading",
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

    @property
    def key(self) -> str:
        return presence_key(self.checkpoint_id, self.zone_id)


@dataclass(frozen=True, slots=True)
class History:
    """What the rules need to know of an attendee's past readings, folded from them in order."""

    zones: Mapping[str, ZonePresence] = field(default_factory=lambda: _EMPTY)
    checkpoint_entries: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    last_by_device: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))

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

    def seen_by(self, device_id: str, at: datetime) -> History:
        """The same history with a later reading by `device_id` at `at` (for the debounce)."""
        return replace(self, last_by_device={**self.last_by_device, device_id: at})

    def apply(self, reading: Reading) -> History:
        """The history after one more reading (denied readings only feed the debounce)."""
        last_by_device = self.last_by_device
        if reading.device_id is not None:
            last_by_device = {**last_by_device, reading.device_id: reading.at}
        if reading.status is not Status.ACCEPTED:
            return replace(self, last_by_device=last_by_device)
        key = reading.key
        before = self.presence(key)
        entries = dict(self.checkpoint_entries)
        if reading.direction is Direction.IN:
            entries[reading.checkpoint_id] = entries.get(reading.checkpoint_id, 0) + 1
            after = ZonePresence(
                True, reading.at, reading.checkpoint_id, before.entries + 1, reading.at
            )
        else:
            after = ZonePresence(
                False, reading.at, reading.checkpoint_id, before.entries, reading.at
            )
        return History({**self.zones, key: after}, entries, last_by_device)


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
    }


def history_from_state(state: Mapping[str, Any]) -> History:
    """The inverse of `history_to_state` (an empty or missing state is an empty history)."""
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
    return History(zones, dict(state.get("checkpoint_entries") or {}), last)
