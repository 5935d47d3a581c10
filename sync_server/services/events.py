"""Events (with their per-event Ed25519 key pair) and the event's child resources: ticket types,
zones and checkpoints. Every lookup is scoped to an event the caller already owns.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from shared import ids
from shared.override import hash_pin
from shared.tickets import EventKey, decrypt_private_key, encrypt_private_key, event_digest
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import Attendee, Checkpoint, Event, TicketType, Zone
from sync_server.models.base import new_id
from sync_server.models.events import (
    DEVICE_SETTINGS,
    CheckpointCreate,
    CheckpointUpdate,
    EventCreate,
    EventUpdate,
)

__all__ = [
    "bump_seq",
    "create_child",
    "create_event",
    "event_private_key",
    "get_child",
    "resend_attendees",
    "save_checkpoint",
    "update_child",
    "update_event",
]

T = TypeVar("T", bound=SQLModel)
CHILD_PREFIX: dict[type[SQLModel], str] = {
    TicketType: ids.TICKET_TYPE,
    Zone: ids.ZONE,
    Checkpoint: ids.CHECKPOINT,
}
CHILD_NAME = {TicketType: "ticket type", Zone: "zone", Checkpoint: "checkpoint"}
CHILD_WINDOWS = {TicketType: ("valid_from", "valid_until"), Checkpoint: ("open_from", "open_until")}


def conflict(message: str, field: str | None = None) -> ApiError:
    details = [{"field": field, "code": "duplicate", "message": message}] if field else []
    return ApiError(409, "conflict", message, details)


def _invalid(field: str, code: str, message: str) -> ApiError:
    return ApiError(
        422, "validation_error", message, [{"field": field, "code": code, "message": message}]
    )


def create_event(
    session: Session, *, organization_id: str, data: EventCreate, secret: bytes
) -> Event:
    event_id = new_id(ids.EVENT)
    key = EventKey.from_seed(os.urandom(32))
    values = data.model_dump(exclude={"override_pin"})
    event = Event(
        id=event_id,
        organization_id=organization_id,
        **values,
        override_pin_hash=_pin_hash(data.override_pin),
        ticket_public_key=key.public_key_b64,
        ticket_private_key_enc=encrypt_private_key(key.private_bytes(), secret, os.urandom(12)),
        key_digest=event_digest(event_id).hex(),
    )
    session.add(event)
    _commit(session, "An event with this slug already exists", "slug")
    return event


# The event's fields a gate receives (shared.sync.EventRow): a change to one of them moves the
# event's change sequence, so a gate long-polling the event hears of it at once.
GATE_FIELDS = frozenset(
    {
        "name",
        "slug",
        "starts_at",
        "ends_at",
        "timezone",
        "capacity",
        "status",
        "override_pin_hash",
        *DEVICE_SETTINGS,
    }
)


def update_event(session: Session, event: Event, data: EventUpdate) -> Event:
    """Apply a PATCH. A change a gate must hear of moves the event's change sequence; a change of
    `gate_email` re-sends every attendee (with or without their email) to every gate."""
    changes = data.model_dump(exclude_unset=True)
    if "override_pin" in changes:  # set (hashed) or cleared with null
        changes["override_pin_hash"] = _pin_hash(changes.pop("override_pin"))
    for name in ("name", "slug", "timezone", "status", *DEVICE_SETTINGS):
        if name in changes and changes[name] is None:
            raise ApiError(
                422,
                "validation_error",
                f"{name} cannot be null",
                [{"field": name, "code": "null", "message": "cannot be null"}],
            )
    merged = {**event.model_dump(), **changes}
    if merged["starts_at"] and merged["ends_at"] and merged["ends_at"] < merged["starts_at"]:
        raise ApiError(
            422,
            "validation_error",
            "the event ends before it starts",
            [{"field": "ends_at", "code": "window", "message": "ends before it starts"}],
        )
    changed = {name for name, value in changes.items() if getattr(event, name) != value}
    for name, value in changes.items():
        setattr(event, name, value)
    event.updated_at = utcnow()
    session.add(event)
    if "gate_email" in changed:
        resend_attendees(session, event.id)
    elif changed & GATE_FIELDS:
        bump_seq(session, event.id)
    _commit(session, "An event with this slug already exists", "slug")
    return event


def _pin_hash(pin: str | None) -> str | None:
    """The stored form of an override PIN (`shared.override.hash_pin`, a fresh salt)."""
    return None if pin is None else hash_pin(pin, os.urandom(16))


def event_private_key(event: Event, secret: bytes) -> bytes:
    return _decrypt(event.ticket_private_key_enc, secret)


@lru_cache(maxsize=256)
def _decrypt(token: str, secret: bytes) -> bytes:
    return decrypt_private_key(token, secret)


_EVENTS = Event.__table__
_BUMP_SEQ = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("b_id"))  # type: ignore[attr-defined]
    .values(change_seq=_EVENTS.c.change_seq + bindparam("b_count"))  # type: ignore[attr-defined]
    .returning(_EVENTS.c.change_seq)  # type: ignore[attr-defined]
)


def bump_seq(session: Session, event_id: str, count: int = 1) -> int:
    """Take the event's next `count` change sequence numbers (the event row stays locked until
    the transaction ends, so sequence numbers commit in order); answers the last one."""
    result = session.connection().execute(_BUMP_SEQ, {"b_id": event_id, "b_count": count})
    return int(result.scalar_one())


_ATTENDEES = Attendee.__table__
_SEQ_SPAN = sa_select(
    func.min(_ATTENDEES.c.seq),  # type: ignore[attr-defined]
    func.max(_ATTENDEES.c.seq),  # type: ignore[attr-defined]
).where(_ATTENDEES.c.event_id == bindparam("b_id"))  # type: ignore[attr-defined]
_SHIFT_SEQ = (
    update(_ATTENDEES)
    .where(_ATTENDEES.c.event_id == bindparam("b_id"))  # type: ignore[attr-defined]
    .values(seq=_ATTENDEES.c.seq + bindparam("b_shift"))  # type: ignore[attr-defined]
)


def resend_attendees(session: Session, event_id: str) -> int:
    """Give every attendee of the event a new change sequence number after the event's head, in
    their order (one UPDATE), so that the next pull of every gate carries them all again: what a
    gate may hold of them changed (`gate_email`). Answers the new head.

    The numbers move by `head + 1 - lowest`: they stay distinct and in order, above anything a
    gate has seen, and the head grows by the span of the attendees' numbers, not by doubling."""
    # Taking no number locks the event row: no other number is handed out until the commit.
    head = bump_seq(session, event_id, 0)
    conn = session.connection()
    lowest, highest = conn.execute(_SEQ_SPAN, {"b_id": event_id}).one()
    if lowest is None:
        return bump_seq(session, event_id)
    shift = head + 1 - int(lowest)
    conn.execute(_SHIFT_SEQ, {"b_id": event_id, "b_shift": shift})
    return bump_seq(session, event_id, int(highest) + shift - head)


def get_child(session: Session, model: type[T], event: Event, child_id: str) -> T:
    row = session.get(model, child_id) if len(child_id) <= 40 else None
    if row is None or row.event_id != event.id:
        raise not_found(CHILD_NAME.get(model, "resource"))
    return row


def create_child(
    session: Session, model: type[T], event: Event, data: BaseModel, **extra: Any
) -> T:
    row = model(id=new_id(CHILD_PREFIX[model]), event_id=event.id, **data.model_dump(), **extra)
    if model is TicketType:
        number = session.execute(
            update(Event)
            .where(col(Event.id) == event.id)
            .values(next_ticket_type_number=Event.next_ticket_type_number + 1)
            .returning(col(Event.next_ticket_type_number))
        ).scalar_one()
        row.number = int(number) - 1
    session.add(row)
    _commit(session, f"A {CHILD_NAME[model]} with this slug already exists", "slug")
    return row


def update_child(session: Session, row: T, changes: dict[str, Any]) -> T:
    """Apply a PATCH; a null for a required field, or a window that would end before it starts,
    is a 422 (the window is checked whole, with the half the PATCH did not send)."""
    columns = type(row).__table__.columns  # type: ignore[attr-defined]
    for name, value in changes.items():
        if value is None and not columns[name].nullable:
            raise _invalid(name, "null", f"{name} cannot be null")
    window = CHILD_WINDOWS.get(type(row))
    if window is not None:
        start, end = (changes.get(name, getattr(row, name)) for name in window)
        if start is not None and end is not None and end < start:
            raise _invalid(window[1], "window", "the window ends before it starts")
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    session.add(row)
    _commit(session, f"A {CHILD_NAME[type(row)]} with this slug already exists", "slug")
    return row


def save_checkpoint(
    session: Session,
    event: Event,
    data: CheckpointCreate | CheckpointUpdate,
    row: Checkpoint | None,
) -> Checkpoint:
    """Create or update a checkpoint once its zone and ticket types are known to be the event's."""
    changes = data.model_dump(exclude_unset=row is not None)
    zone_id = changes.get("zone_id")
    zone = session.get(Zone, zone_id) if zone_id is not None and len(zone_id) <= 40 else None
    if zone_id is not None and (zone is None or zone.event_id != event.id):
        raise _invalid("zone_id", "unknown", "no such zone in this event")
    wanted = set(changes.get("allowed_ticket_types") or [])
    if wanted:
        known = set(session.exec(select(TicketType.slug).where(TicketType.event_id == event.id)))
        unknown = sorted(wanted - known)
        if unknown:
            raise ApiError(
                422,
                "validation_error",
                f"unknown ticket types: {', '.join(unknown)}",
                [
                    {
                        "field": "allowed_ticket_types",
                        "code": "unknown",
                        "message": f"unknown: {', '.join(unknown)}",
                    }
                ],
            )
    if row is None:
        return create_child(session, Checkpoint, event, data)
    return update_child(session, row, changes)


def _commit(session: Session, message: str, field: str) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise conflict(message, field) from exc
