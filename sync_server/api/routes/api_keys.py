"""API keys: create (the key is shown once), list, revoke. Admin scope."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlmodel import select

from sync_server.api.deps import Admin, SessionDep, owned
from sync_server.api.pagination import Page, paginate
from sync_server.models import ApiKey
from sync_server.models.core import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from sync_server.services.keys import create_api_key, revoke_api_key

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


def _public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(key, from_attributes=True)


@router.post("", status_code=201, operation_id="create_api_key")
def create(
    body: ApiKeyCreate, principal: Admin, session: SessionDep, request: Request
) -> ApiKeyCreated:
    key, token = create_api_key(
        session,
        organization_id=principal.organization_id,
        name=body.name,
        scopes=[s.value for s in body.scopes],
        secret=request.app.state.secret,
    )
    return ApiKeyCreated(**_public(key).model_dump(), key=token)


@router.get("", operation_id="list_api_keys")
def list_keys(
    principal: Admin, session: SessionDep, limit: int | None = None, cursor: str | None = None
) -> Page[ApiKeyPublic]:
    query = select(ApiKey).where(ApiKey.organization_id == principal.organization_id)
    return paginate(session, query, ApiKey, limit=limit, cursor=cursor, render=_public)


@router.delete("/{key_id}", status_code=204, operation_id="revoke_api_key")
def revoke(key_id: str, principal: Admin, session: SessionDep) -> Response:
    revoke_api_key(session, owned(session, principal, ApiKey, key_id, "API key"))
    return Response(status_code=204)
