"""Sync conflicts for admins: list an event's, read one, resolve it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import select

from sync_server.api.deps import Admin, EventDep, SessionDep, owned
from sync_server.api.pagination import Page, paginate
from sync_server.models import Conflict, Scan
from sync_server.models.base import Input
from sync_server.models.people import ScanPublic
from sync_server.services.conflicts import Resolution, resolve_conflict

router = APIRouter(tags=["conflicts"])


class ResolveRequest(Input):
    resolution: Resolution
    note: str | None = Field(default=None, max_length=2000)


class ConflictPublic(BaseModel):
    object: str = "conflict"
    id: str
    event_id: str
    kind: str
    status: str
    scan_ids: list[str]
    attendee_ids: list[str]
    registration_id: str | None
    details: dict[str, Any]
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    created_at: datetime


class ConflictDetail(ConflictPublic):
    scans: list[ScanPublic]


def conflict_public(conflict: Conflict) -> ConflictPublic:
    return ConflictPublic.model_validate(conflict, from_attributes=True)


def _owned(session: SessionDep, principal: Admin, conflict_id: str) -> Conflict:
    return owned(session, principal, Conflict, conflict_id, "conflict")


@router.get("/v1/events/{event_id}/conflicts", operation_id="list_conflicts")
def list_conflicts(
    event: EventDep,
    principal: Admin,
    session: SessionDep,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ConflictPublic]:
    query = select(Conflict).where(Conflict.event_id == event.id)
    if status:
        query = query.where(Conflict.status == status)
    return paginate(session, query, Conflict, limit=limit, cursor=cursor, render=conflict_public)


@router.get("/v1/conflicts/{conflict_id}", operation_id="get_conflict")
def get(conflict_id: str, principal: Admin, session: SessionDep) -> ConflictDetail:
    conflict = _owned(session, principal, conflict_id)
    scans = (
        session.exec(select(Scan).where(Scan.id.in_(conflict.scan_ids))).all()
        if conflict.scan_ids
        else []
    )  # type: ignore[attr-defined]
    return ConflictDetail(
        **conflict_public(conflict).model_dump(),
        scans=[ScanPublic.model_validate(s, from_attributes=True) for s in scans],
    )


@router.post("/v1/conflicts/{conflict_id}/resolve", operation_id="resolve_conflict")
def resolve(
    conflict_id: str, body: ResolveRequest, principal: Admin, session: SessionDep
) -> ConflictPublic:
    conflict = _owned(session, principal, conflict_id)
    resolved = resolve_conflict(
        session,
        conflict=conflict,
        resolution=body.resolution,
        resolver=principal.subject_id,
        note=body.note,
    )
    return conflict_public(resolved)
