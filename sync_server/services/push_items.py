"""What every kind of pushed item shares: the push's context (organization, device, its clock
offset, the events read so far), the answers for rejected and repeated items, and a reading's
supervisor override checked and stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, select

from shared.kinds import Direction, Status
from shared.sync import ItemResult, ItemStatus, ScanItem, from_builtins
from sync_server.models import Event
from sync_server.webhooks import outbox

__all__ = [
    "PushContext",
    "duplicate_of",
    "override_columns",
    "override_problem",
    "raw_id",
    "rejected",
    "wire_error",
]

EVENTS: Table = Event.__table__  # type: ignore[assignment]


@dataclass
class PushContext:
    organization_id: str
    device_id: str
    clock_offset_ms: int
    secret: bytes
    events: dict[str, Any] = field(default_factory=dict)
    subs: list[outbox.Subscriber] = field(default_factory=list)  # of the current transaction

    def event(self, conn: Connection, event_id: str) -> Any:
        """The event row when it is this organization's, else None (read once per push)."""
        if event_id not in self.events:
            self.events[event_id] = conn.execute(
                select(EVENTS).where(EVENTS.c.id == event_id)
            ).first()
        row = self.events[event_id]
        return row if row is not None and row.organization_id == self.organization_id else None


def rejected(item_id: Any, error: str) -> ItemResult:
    return ItemResult(
        id=str(item_id)[:64] if item_id is not None else "",
        status=ItemStatus.REJECTED,
        error=error[:300],
    )


_PLAIN = (
    ("matching regex '^[^\\x00]*$'", "text without NUL characters"),
    ("matching regex '^[0-9a-fA-F]{8}-", "a UUID (the item's client id)"),
)


def wire_error(exc: Exception) -> str:
    """A decoding error in one line ("Expected `str` of length <= 64 - at `$.id`"), with the
    house patterns said in words."""
    text = str(exc).splitlines()[0] if str(exc) else "not a valid item"
    for needle, words in _PLAIN:
        if needle in text:
            where = text.rpartition(" - at ")[2]
            text = f"Expected {words} - at {where}"
    return text[:300]


def raw_id(raw: msgspec.Raw | bytes) -> Any:
    """The `id` of an item that failed to decode, when it has a readable one."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return value.get("id") if isinstance(value, dict) else None


def duplicate_of(stored: dict[str, Any]) -> ItemResult:
    """The first answer to an item, given again for a repeat of it."""
    first = from_builtins(stored, ItemResult)
    return msgspec.structs.replace(first, status=ItemStatus.DUPLICATE)


def override_problem(item: ScanItem, direction: Direction) -> str | None:
    """Why an override reading cannot be applied, or None (any other reading: None)."""
    if not item.override:
        return None
    if item.device_verdict.status is not Status.ACCEPTED or direction is not Direction.IN:
        return "an override is an admitted entry"
    if item.override_reason is None or item.override_note is None or not item.override_note.strip():
        return "an override needs a reason and a note"
    return None


def override_columns(item: ScanItem) -> dict[str, Any]:
    """The reading's override as stored: every column for every reading (a batch is inserted
    with the columns of its first row)."""
    if not item.override:
        return {
            "override": False,
            "override_reason": None,
            "override_note": None,
            "overridden_reason": None,
        }
    return {
        "override": True,
        "override_reason": item.override_reason.value if item.override_reason else None,
        "override_note": item.override_note,
        "overridden_reason": item.overridden_reason.value if item.overridden_reason else None,
    }
