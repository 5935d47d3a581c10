"""Organizations and their API keys (stored as prefix + HMAC, never in clear)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, field_validator
from sqlmodel import Field, SQLModel

from sync_server.models.base import Input, json_field, time_field

__all__ = ["ApiKey", "ApiKeyCreate", "ApiKeyCreated", "ApiKeyPublic", "Organization", "Scope"]


class Scope(StrEnum):
    ADMIN = "admin"
    READ = "read"
    WRITE = "write"
    WEBHOOKS = "webhooks"
    SCAN = "scan"  # device tokens only


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    created_at: datetime = time_field(nullable=False, default_now=True)


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)

    @field_validator("scopes")
    @classmethod
    def _not_scan(cls, scopes: list[Scope]) -> list[Scope]:
        if Scope.SCAN in scopes:
            raise ValueError("the scan scope belongs to device tokens, not API keys")
        return scopes


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    organization_id: str = Field(foreign_key="organizations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=20)
    key_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = json_field(list)
    created_at: datetime = time_field(nullable=False, default_now=True)
    last_used_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()


class ApiKeyPublic(BaseModel):
    object: str = "api_key"
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str
