"""Attendees: CRUD with search and filters, registrations from external forms, the ticket QR."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Query, Request, Response

from shared.rules import AttendeeStatus
from sync_server.api.deps import EventDep, EventWriteDep, SessionDep
from sync_server.api.pagination import Page, paginate
from sync_server.models import Attendee
from sync_server.models.people import AttendeeCreate, AttendeePublic, AttendeeSource, AttendeeUpdate
from sync_server.services.attendees import (
    AttendeeFilters,
    attendee_public,
    create_attendee,
    delete_attendee,
    filtered_attendees,
    get_attendee,
    ticket_type_by_slug,
    ticket_types_by_id,
    update_attendee,
)

router = APIRouter(prefix="/v1/events/{event_id}", tags=["attendees"])


def _render(session: SessionDep, attendee: Attendee) -> AttendeePublic:
    types = ticket_types_by_id(session, attendee.event_id)
    return attendee_public(attendee, types[attendee.ticket_type_id].slug)


@router.post("/attendees", status_code=201, operation_id="create_attendee")
def create(
    body: AttendeeCreate, event: EventWriteDep, session: SessionDep, request: Request
) -> AttendeePublic:
    attendee = create_attendee(
        session, event=event, data=body, source=AttendeeSource.API, secret=request.app.state.secret
    )
    return _render(session, attendee)


@router.post("/registrations", status_code=201, operation_id="register_attendee")
def register(
    body: AttendeeCreate, event: EventWriteDep, session: SessionDep, request: Request
) -> AttendeePublic:
    """Register one attendee from an external form: 201 with the `qr`, 409 on a duplicate email."""
    attendee = create_attendee(
        session, event=event, data=body, source=AttendeeSource.API, secret=request.app.state.secret
    )
    return _render(session, attendee)


@router.get("/attendees", operation_id="list_attendees")
def list_attendees(
    event: EventDep,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: AttendeeStatus | None = None,
    ticket_type: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    checked_in: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[AttendeePublic]:
    types = ticket_types_by_id(session, event.id)
    type_id = ticket_type_by_slug(session, event, ticket_type).id if ticket_type else None
    filters = AttendeeFilters(q, status, type_id, tag, checked_in)
    return paginate(
        session,
        filtered_attendees(event, filters),
        Attendee,
        limit=limit,
        cursor=cursor,
        render=lambda a: attendee_public(a, types[a.ticket_type_id].slug),
    )


@router.get("/attendees/{attendee_id}", operation_id="get_attendee")
def get(attendee_id: str, event: EventDep, session: SessionDep) -> AttendeePublic:
    return _render(session, get_attendee(session, event, attendee_id))


@router.patch("/attendees/{attendee_id}", operation_id="update_attendee")
def update(
    attendee_id: str,
    body: AttendeeUpdate,
    event: EventWriteDep,
    session: SessionDep,
    request: Request,
) -> AttendeePublic:
    attendee, _ = update_attendee(
        session,
        event=event,
        attendee=get_attendee(session, event, attendee_id),
        data=body,
        secret=request.app.state.secret,
    )
    return _render(session, attendee)


@router.delete("/attendees/{attendee_id}", status_code=204, operation_id="delete_attendee")
def delete(attendee_id: str, event: EventWriteDep, session: SessionDep) -> Response:
    delete_attendee(session, event=event, attendee=get_attendee(session, event, attendee_id))
    return Response(status_code=204)


@router.get(
    "/attendees/{attendee_id}/qr.png",
    operation_id="get_attendee_qr",
    response_class=Response,
    responses={
        200: {
            "description": "The ticket's QR code as a PNG image",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def qr_png(
    attendee_id: str,
    event: EventDep,
    session: SessionDep,
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    attendee = get_attendee(session, event, attendee_id)
    return Response(qr_png_bytes(attendee.qr, scale), media_type="image/png")


def qr_png_bytes(text: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
