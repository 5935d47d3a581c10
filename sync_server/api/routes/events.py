"""Events: create (with their ticket key pair), read, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import select

from sync_server.api.deps import EventDep, EventWriteDep, Reader, SessionDep, Writer
from sync_server.api.pagination import Page, paginate
from sync_server.models import Event
from sync_server.models.events import EventCreate, EventPublic, EventUpdate
from sync_server.services.events import create_event, update_event

router = APIRouter(prefix="/v1/events", tags=["events"])


def event_public(event: Event) -> EventPublic:
    """An event as the API shows it: whether an override PIN is set, never its hash."""
    public = EventPublic.model_validate(event, from_attributes=True)
    return public.model_copy(update={"override_pin_set": event.override_pin_hash is not None})


@router.post("", status_code=201, operation_id="create_event")
def create(
    body: EventCreate, principal: Writer, session: SessionDep, request: Request
) -> EventPublic:
    event = create_event(
        session,
        organization_id=principal.organization_id,
        data=body,
        secret=request.app.state.secret,
    )
    return event_public(event)


@router.get("", operation_id="list_events")
def list_events(
    principal: Reader,
    session: SessionDep,
    limit: int | None = None,
    cursor: str | None = None,
    status: str | None = None,
) -> Page[EventPublic]:
    query = select(Event).where(Event.organization_id == principal.organization_id)
    if status:
        query = query.where(Event.status == status)
    return paginate(session, query, Event, limit=limit, cursor=cursor, render=event_public)


@router.get("/{event_id}", operation_id="get_event")
def get(event: EventDep) -> EventPublic:
    return event_public(event)


@router.patch("/{event_id}", operation_id="update_event")
def update(body: EventUpdate, event: EventWriteDep, session: SessionDep) -> EventPublic:
    return event_public(update_event(session, event, body))


@router.delete("/{event_id}", status_code=204, operation_id="delete_event")
def delete(event: EventWriteDep, session: SessionDep) -> Response:
    session.delete(event)
    session.commit()
    return Response(status_code=204)
