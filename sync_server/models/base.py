"""Column helpers shared by every table: aware UTC times, JSON lists and objects, new ids."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from shared.ids import make_id
from sync_server.db import UTCDateTime, utcnow

__all__ = ["json_field", "new_id", "time_field", "utcnow"]


def new_id(prefix: str) -> str:
    return make_id(prefix, os.urandom(16))


def time_field(*, nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    column = Column(UTCDateTime(), nullable=nullable, index=index)
    if default_now:
        return Field(default_factory=utcnow, sa_column=column)
    return Field(default=None, sa_column=column)


def json_field(kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    return Field(default_factory=kind, sa_column=Column(JSON, nullable=False))

