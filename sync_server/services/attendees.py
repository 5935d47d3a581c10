"""Attendees: create, update, delete (leaving a tombstone), search, and the QR string each one
carries (the custom code, or a `DC1` ticket signed with the event's key).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Text, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from shared import ids
from shared.history import history_from_state
from shared.resolution import validity
from shared.tickets import TicketPayload, event_digest, issue_ticket
from shared.webhooks import previous_values
from sync_server.db import utcnow
from sync_server.errors import ApiError, not_found
from sync_server.models import Attendee, AttendeeTombstone, Event, TicketType
from sync_server.models.base import new_id
from sync_server.models.people import AttendeeCreate, AttendeePublic, AttendeeSource, AttendeeUpdate
from sync_server.services.events import bump_seq, conflict, event_private_key
from sync_server.webhooks import messages, outbox

__all__ = [
    "AttendeeFilters",
    "announce_registered",
    "attendee_public",
    "create_attendee",
    "create_attendee_row",
    "delete_attendee",
    "filtered_attendees",
    "get_attendee",
    "issue_qr",
    "ticket_payload",
    "ticket_type_by_slug",
    "ticket_types_by_id",
    "update_attendee",
]


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else max(1, min(int(value.timestamp()), 2**32 - 1))


def ticket_payload(
    event: Event, ticket_type: TicketType, attendee_id: str, attendee: dict[str, Any]
) -> TicketPayload:
    """What the attendee's signed ticket says (validity: attendee's and type's overlap)."""
    valid_from, valid_until = validity(
        attendee.get("valid_from"),
        attendee.get("valid_until"),
        ticket_type.valid_from,
        ticket_type.valid_until,
    )
    return TicketPayload(
        event_digest=event_digest(event.id),
        attendee_id=attendee_id,
        ticket_type_number=ticket_type.number,
        valid_from=_epoch(valid_from),
        valid_until=_epoch(valid_until),
    )


def issue_qr(
    event: Event, ticket_type: TicketType, attendee_id: str, attendee: dict[str, Any], secret: bytes
) -> str:
    """The exact string to encode in the attendee's QR code."""
    if attendee.get("code"):
        return str(attendee["code"])
    payload = ticket_payload(event, ticket_type, attendee_id, attendee)
    return issue_ticket(payload, event_private_key(event, secret))


def ticket_type_by_slug(session: Session, event: Event, slug: str) -> TicketType:
    row = session.exec(
        select(TicketType).where(TicketType.event_id == event.id, TicketType.slug == slug)
    ).first()
    if row is None:
        raise ApiError(
            422,
            "validation_error",
            f"unknown ticket type {slug!r}",
            [{"field": "ticket_type", "code": "unknown", "message": "no such ticket type"}],
        )
    return row


def ticket_types_by_id(session: Session, event_id: str) -> dict[str, TicketType]:
    return {
        t.id: t for t in session.exec(select(TicketType).where(TicketType.event_id == event_id))
    }


def attendee_public(attendee: Attendee, ticket_type_slug: str) -> AttendeePublic:
    return AttendeePublic.of(attendee.model_dump(), ticket_type_slug)


def get_attendee(session: Session, event: Event, attendee_id: str) -> Attendee:
    row = session.get(Attendee, attendee_id) if len(attendee_id) <= 40 else None
    if row is None or row.event_id != event.id:
        raise not_found("attendee")
    return row


def _norm_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def _save(session: Session, attendee: Attendee) -> None:
    session.add(attendee)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        # Only the first line names the constraint: the values after it may contain anything.
        text = str(exc.orig).splitlines()[0].lower()
        if "email_norm" in text:
            raise conflict("An attendee with this email is already registered", "email") from exc
        if "code" in text:
            raise conflict("Another attendee of this event has this code", "code") from exc
        raise


def create_attendee(
    session: Session,
    *,
    event: Event,
    data: AttendeeCreate,
    source: AttendeeSource,
    secret: bytes,
    attendee_id: str | None = None,
) -> Attendee:
    """Create one attendee and commit; 409 on a duplicate email (any case) or code."""
    ticket_type = ticket_type_by_slug(session, event, data.ticket_type)
    fields = data.model_dump(exclude={"ticket_type"})
    new = attendee_id or new_id(ids.ATTENDEE)
    attendee = Attendee(
        id=new,
        event_id=event.id,
        **fields,
        email_norm=_norm_email(data.email),
        ticket_type_id=ticket_type.id,
        qr=issue_qr(event, ticket_type, new, fields, secret),
        source=source,
        seq=bump_seq(session, event.id),
    )
    announce_registered(session, event.organization_id, event.id, [attendee])
    _save(session, attendee)
    return attendee


def announce_registered(
    session: Session,
    organization_id: str,
    event_id: str,
    attendees: list[Any],
    subs: list[outbox.Subscriber] | None = None,
) -> None:
    """Queue one `attendee.registered` per new attendee (rows, mappings or `Attendee`s)."""
    conn = session.connection()
    if subs is None:
        subs = outbox.subscribers(conn, organization_id)
    if not attendees or not outbox.wanted(subs, "attendee.registered", event_id):
        return
    field = (lambda a, n: a[n]) if isinstance(attendees[0], dict) else getattr
    types = messages.ticket_type_refs(conn, {field(a, "ticket_type_id") for a in attendees})
    event = messages.event_ref(conn, event_id)
    items = [
        outbox.Emission(
            event_id,
            "attendee.registered",
            {
                "event": event,
                "attendee": messages.whole_attendee(a, types.get(field(a, "ticket_type_id"), {})),
                "source": str(field(a, "source")),
            },
        )
        for a in attendees
    ]
    outbox.emit_many(conn, subs, organization_id=organization_id, items=items)


def _announce_update(
    session: Session,
    event: Event,
    attendee: Attendee,
    changed: list[str],
    before: dict[str, Any],
) -> None:
    previous_status = before["status"]
    conn = session.connection()
    subs = outbox.subscribers(conn, event.organization_id)
    status_changed = attendee.status != previous_status
    want_update = bool(changed) and outbox.wanted(subs, "attendee.updated", event.id)
    want_status = status_changed and outbox.wanted(subs, "attendee.status_changed", event.id)
    if not (want_update or want_status):
        return
    types = messages.ticket_type_refs(conn, [attendee.ticket_type_id])
    ticket_type = types.get(attendee.ticket_type_id, {})
    base = {
        "event": messages.event_ref(conn, event.id),
        "attendee": messages.whole_attendee(attendee, ticket_type),
    }
    items = []
    if want_update:
        then = messages.whole_attendee(
            before,
            messages.ticket_type_refs(conn, [before["ticket_type_id"]]).get(
                before["ticket_type_id"], {}
            ),
        )
        data = {
            **base,
            "changed": changed,
            "previous": previous_values(then, base["attendee"], changed),
        }
        items.append(outbox.Emission(event.id, "attendee.updated", data))
    if want_status:
        items.append(
            outbox.Emission(
                event.id, "attendee.status_changed", {**base, "previous_status": previous_status}
            )
        )
    outbox.emit_many(conn, subs, organization_id=event.organization_id, items=items)


def create_attendee_row(
    session: Session,
    *,
    event_id: str,
    data: AttendeeCreate,
    source: AttendeeSource,
    secret: bytes,
    attendee_id: str,
    subs: list[outbox.Subscriber] | None = None,
) -> str | None:
    """Insert one attendee inside the caller's transaction (a savepoint guards it); answers an
    error message instead of raising, for batch callers that report per item."""
    event = session.get(Event, event_id)
    assert event is not None
    ticket_type = session.exec(
        select(TicketType).where(
            TicketType.event_id == event_id, TicketType.slug == data.ticket_type
        )
    ).first()
    if ticket_type is None:
        return f"unknown ticket type {data.ticket_type!r}"
    fields = data.model_dump(exclude={"ticket_type"})
    attendee = Attendee(
        id=attendee_id,
        event_id=event_id,
        **fields,
        email_norm=_norm_email(data.email),
        ticket_type_id=ticket_type.id,
        qr=issue_qr(event, ticket_type, attendee_id, fields, secret),
        source=source,
        seq=bump_seq(session, event_id),
    )
    try:
        with session.begin_nested():
            session.add(attendee)
    except IntegrityError:
        return "an attendee with this email or id already exists"
    announce_registered(session, event.organization_id, event_id, [attendee], subs)
    return None


def update_attendee(
    session: Session, *, event: Event, attendee: Attendee, data: AttendeeUpdate, secret: bytes
) -> tuple[Attendee, str | None]:
    """Apply a PATCH; answers the attendee and its previous status when the status changed."""
    changes = data.model_dump(exclude_unset=True)
    for name in ("first_name", "last_name", "ticket_type", "status", "tags", "custom_data"):
        if name in changes and changes[name] is None:
            raise ApiError(
                422,
                "validation_error",
                f"{name} cannot be null",
                [{"field": name, "code": "null", "message": "cannot be null"}],
            )
    if str(changes.get("code") or "").upper().startswith("DC1"):
        raise ApiError(
            422,
            "validation_error",
            "custom codes may not start with DC1",
            [{"field": "code", "code": "reserved", "message": "DC1 is reserved"}],
        )
    ticket_type = (
        ticket_type_by_slug(session, event, changes.pop("ticket_type"))
        if "ticket_type" in changes
        else session.get(TicketType, attendee.ticket_type_id)
    )
    assert ticket_type is not None
    previous_status = attendee.status
    before = attendee.model_dump()
    for name, value in changes.items():
        setattr(attendee, name, value)
    if attendee.status != previous_status:
        attendee.status_changed_at = utcnow()
    attendee.ticket_type_id = ticket_type.id
    attendee.email_norm = _norm_email(attendee.email)
    attendee.qr = issue_qr(event, ticket_type, attendee.id, attendee.model_dump(), secret)
    attendee.updated_at = utcnow()
    attendee.seq = bump_seq(session, event.id)
    after = attendee.model_dump()
    changed = sorted(
        name.removesuffix("_id")
        for name in (*changes, "ticket_type_id")
        if name in before and before[name] != after[name]
    )
    _announce_update(session, event, attendee, changed, before)
    _save(session, attendee)
    return attendee, previous_status if previous_status != attendee.status else None


def delete_attendee(session: Session, *, event: Event, attendee: Attendee) -> None:
    seq = bump_seq(session, event.id)
    session.delete(attendee)
    session.add(AttendeeTombstone(id=attendee.id, event_id=event.id, seq=seq))
    session.commit()


class AttendeeFilters:
    """The list filters of SPEC section 4: q, status, ticket_type, tag, checked_in."""

    def __init__(
        self,
        q: str | None = None,
        status: str | None = None,
        ticket_type_id: str | None = None,
        tag: str | None = None,
        checked_in: bool | None = None,
    ) -> None:
        self.q, self.status, self.ticket_type_id = q, status, ticket_type_id
        self.tag, self.checked_in = tag, checked_in


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered_attendees(event: Event, filters: AttendeeFilters) -> SelectOfScalar[Attendee]:
    query = select(Attendee).where(Attendee.event_id == event.id)
    if filters.q:
        needle = f"%{_like_escape(filters.q.strip().lower())}%"
        full_name = func.lower(col(Attendee.first_name) + " " + col(Attendee.last_name))
        query = query.where(
            or_(
                full_name.like(needle, escape="\\"),
                col(Attendee.email_norm).like(needle, escape="\\"),
                func.lower(col(Attendee.code)).like(needle, escape="\\"),
                col(Attendee.id) == filters.q.strip(),
            )
        )
    if filters.status:
        query = query.where(Attendee.status == filters.status)
    if filters.ticket_type_id:
        query = query.where(Attendee.ticket_type_id == filters.ticket_type_id)
    if filters.tag:
        needle = f"%{_like_escape(json.dumps(filters.tag))}%"
        query = query.where(func.cast(col(Attendee.tags), Text()).like(needle, escape="\\"))
    if filters.checked_in is not None:
        query = query.where((col(Attendee.entries) > 0) == filters.checked_in)
    return query


def attendee_history(attendee: Attendee) -> Any:
    return history_from_state(attendee.state or {})
