"""Organizations and API keys: created with the key shown once, revoked at once."""

from __future__ import annotations

from sqlmodel import Session

from shared import ids
from sync_server.db import utcnow
from sync_server.models import ApiKey, Organization
from sync_server.models.base import new_id
from sync_server.security import API_KEY_PREFIX, hash_token, new_token, public_prefix

__all__ = ["create_api_key", "create_organization", "revoke_api_key"]


def create_api_key(
    session: Session, *, organization_id: str, name: str, scopes: list[str], secret: bytes
) -> tuple[ApiKey, str]:
    """A new key row and the key itself (the only time it exists in clear)."""
    token = new_token(API_KEY_PREFIX)
    key = ApiKey(
        id=new_id(ids.API_KEY),
        organization_id=organization_id,
        name=name,
        prefix=public_prefix(token),
        key_hash=hash_token(secret, token),
        scopes=scopes,
    )
    session.add(key)
    session.commit()
    return key, token


def revoke_api_key(session: Session, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.commit()


def create_organization(session: Session, *, name: str, secret: bytes) -> tuple[Organization, str]:
    """An organization with one admin key; answers the key in clear, once."""
    org = Organization(id=new_id(ids.ORGANIZATION), name=name)
    session.add(org)
    session.flush()
    _, token = create_api_key(
        session, organization_id=org.id, name="admin", scopes=["admin"], secret=secret
    )
    return org, token
