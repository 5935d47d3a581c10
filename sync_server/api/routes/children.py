"""The event's child resources (ticket types, zones, checkpoints) share one CRUD shape; each gets
its own router from `child_router`.
"""

# No `from __future__ import annotations`: the routes' body types are closure values that
# FastAPI must see evaluated.
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from sync_server.api.deps import EventDep, EventWriteDep, SessionDep
from sync_server.api.pagination import Page, paginate
from sync_server.errors import ApiError
from sync_server.models import Checkpoint, Event, TicketType, Zone
from sync_server.models.events import (
    CheckpointCreate,
    CheckpointPublic,
    CheckpointUpdate,
    TicketTypeCreate,
    TicketTypePublic,
    TicketTypeUpdate,
    ZoneCreate,
    ZonePublic,
    ZoneUpdate,
)
from sync_server.services.events import create_child, get_child, save_checkpoint, update_child

Saver = Callable[[Session, Event, Any, Any], SQLModel]


def _plain_save(model: type[SQLModel]) -> Saver:
    def save(session: Session, event: Event, data: BaseModel, row: SQLModel | None) -> SQLModel:
        if row is None:
            return create_child(session, model, event, data)
        return update_child(session, row, data.model_dump(exclude_unset=True))

    return save


def child_router(
    *,
    path: str,
    name: str,
    model: type[SQLModel],
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    public: type[BaseModel],
    save: Saver,
) -> APIRouter:
    router = APIRouter(prefix=f"/v1/events/{{event_id}}/{path}", tags=[path])

    def render(row: SQLModel) -> BaseModel:
        return public.model_validate(row, from_attributes=True)

    def create(body: create_schema, event: EventWriteDep, session: SessionDep) -> Any:  # type: ignore[valid-type]
        return render(save(session, event, body, None))

    def list_rows(
        event: EventDep, session: SessionDep, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        query = select(model).where(model.event_id == event.id)
        return paginate(session, query, model, limit=limit, cursor=cursor, render=render)

    def get(child_id: str, event: EventDep, session: SessionDep) -> Any:
        return render(get_child(session, model, event, child_id))

    def update(
        child_id: str, body: update_schema, event: EventWriteDep, session: SessionDep
    ) -> Any:  # type: ignore[valid-type]
        return render(save(session, event, body, get_child(session, model, event, child_id)))

    def delete(child_id: str, event: EventWriteDep, session: SessionDep) -> Response:
        session.delete(get_child(session, model, event, child_id))
        try:
            session.commit()
        except IntegrityError as exc:
            raise ApiError(
                409, "conflict", f"This {name.replace('_', ' ')} is still in use"
            ) from exc
        return Response(status_code=204)

    router.add_api_route(
        "",
        create,
        methods=["POST"],
        status_code=201,
        response_model=public,
        operation_id=f"create_{name}",
    )
    router.add_api_route(
        "",
        list_rows,
        methods=["GET"],
        response_model=Page[public],  # type: ignore[valid-type]
        operation_id=f"list_{name}s",
    )
    router.add_api_route(
        "/{child_id}", get, methods=["GET"], response_model=public, operation_id=f"get_{name}"
    )
    router.add_api_route(
        "/{child_id}",
        update,
        methods=["PATCH"],
        response_model=public,
        operation_id=f"update_{name}",
    )
    router.add_api_route(
        "/{child_id}", delete, methods=["DELETE"], status_code=204, operation_id=f"delete_{name}"
    )
    return router


ticket_types = child_router(
    path="ticket-types",
    name="ticket_type",
    model=TicketType,
    create_schema=TicketTypeCreate,
    update_schema=TicketTypeUpdate,
    public=TicketTypePublic,
    save=_plain_save(TicketType),
)
zones = child_router(
    path="zones",
    name="zone",
    model=Zone,
    create_schema=ZoneCreate,
    update_schema=ZoneUpdate,
    public=ZonePublic,
    save=_plain_save(Zone),
)
checkpoints = child_router(
    path="checkpoints",
    name="checkpoint",
    model=Checkpoint,
    create_schema=CheckpointCreate,
    update_schema=CheckpointUpdate,
    public=CheckpointPublic,
    save=save_checkpoint,
)
