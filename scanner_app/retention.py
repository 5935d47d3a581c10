"""How long a gate keeps an event's attendees (SPEC section 10; docs/scanner.md, "A lost gate").

An event's data may stay on a gate until `device_data_ttl_hours` after the event ends (or after
the gate's last sync of it, for an event without an end). A sync that brings a later end or a
longer retention renews it; past the deadline the gate uploads what it can and erases the
event's attendees by itself, offline too, and refuses to scan for it until a sync renews it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from scanner_app.errors import GateError, Problem
from scanner_app.store import Store, iso, parse_iso
from scanner_app.store.events import event_settings, forget_event
from shared.sync import EventRow

__all__ = [
    "check",
    "deadline",
    "due_events",
    "expire",
    "is_expired",
    "pullable",
    "renew",
    "settings",
]

_EVENT = msgspec.json.Decoder(EventRow)


def deadline(event: EventRow, synced_at: datetime | None) -> datetime | None:
    """When the gate must have erased the event's attendees (None: not yet known)."""
    end = event.ends_at or synced_at
    return None if end is None else end + timedelta(hours=event.device_data_ttl_hours)


def settings(store: Store) -> dict[str, EventRow]:
    """Each cached event's settings."""
    return {event_id: event for event_id, (event, _) in _events(store).items()}


def _events(store: Store) -> dict[str, tuple[EventRow, datetime | None]]:
    found = {}
    for row in event_settings(store):
        try:
            found[row["id"]] = (_EVENT.decode(row["data"]), parse_iso(row["synced_at"]))
        except msgspec.DecodeError:
            continue
    return found


def _deadlines(store: Store) -> dict[str, datetime | None]:
    return {key: deadline(event, synced) for key, (event, synced) in _events(store).items()}


def due_events(store: Store, now: datetime) -> list[str]:
    """The cached events past their deadline whose data is not erased yet."""
    return [
        event_id
        for event_id, due in _deadlines(store).items()
        if due is not None and now >= due and not is_expired(store, event_id)
    ]


def is_expired(store: Store, event_id: str) -> bool:
    return store.get_meta(f"expired:{event_id}") is not None


def check(store: Store, event_id: str) -> None:
    """Raise `GateError(EXPIRED)` for an event whose attendee data was erased."""
    if is_expired(store, event_id):
        raise GateError(
            Problem.EXPIRED, "this event's attendee data was erased: its retention passed"
        )


def pullable(store: Store, event_id: str, now: datetime) -> bool:
    """Whether to keep pulling an event: not expired, or renewed by a refreshed event list."""
    return not is_expired(store, event_id) or event_id in renew(store, now)


def expire(store: Store, event_id: str, now: datetime) -> None:
    forget_event(store, event_id, iso(now) or "")


def renew(store: Store, now: datetime) -> list[str]:
    """Events a sync renewed (their deadline is ahead again): they may be pulled and scanned."""
    renewed = []
    for event_id, due in _deadlines(store).items():
        if is_expired(store, event_id) and (due is None or now < due):
            store.set_meta(f"expired:{event_id}", None)
            renewed.append(event_id)
    return renewed
