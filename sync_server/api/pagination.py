"""Cursor pagination of lists, newest first:
`{"object": "list", "data", "has_more", "next_cursor"}`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import and_, or_
from sqlmodel import Session, SQLModel, col
from sqlmodel.sql.expression import SelectOfScalar

from sync_server.errors import ApiError
from sync_server.models.base import storable

__all__ = ["Page", "paginate"]

T = TypeVar("T", bound=SQLModel)
Item = TypeVar("Item")
DEFAULT_LIMIT, MAX_LIMIT = 25, 100


class Page(BaseModel, Generic[Item]):
    """One page of a list, newest first; `Page[AttendeePublic]` types its items for OpenAPI."""

    object: str = "list"
    data: list[Item]
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


def _encode(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time is aware")
        return moment, storable(str(row_id))
    except (ValueError, TypeError) as exc:
        detail = {"field": "cursor", "code": "invalid", "message": "Invalid cursor"}
        raise ApiError(422, "validation_error", "Invalid cursor", [detail]) from exc


def paginate(
    session: Session,
    query: SelectOfScalar[T],
    model: type[T],
    *,
    limit: int | None,
    cursor: str | None,
    render: Callable[[T], Any],
    order_column: str = "created_at",
) -> Page[Any]:
    """One page of `query` ordered by (`order_column`, id) descending."""
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise ApiError(
            422,
            "validation_error",
            f"limit must be between 1 and {MAX_LIMIT}",
            [{"field": "limit", "code": "range", "message": "1 to 100"}],
        )
    created, ident = col(getattr(model, order_column)), col(model.id)
    if cursor:
        if len(cursor) > 500:
            raise ApiError(422, "validation_error", "Invalid cursor")
        stamp, row_id = _decode(cursor)
        query = query.where(or_(created < stamp, and_(created == stamp, ident < row_id)))
    rows: Sequence[T] = session.exec(
        query.order_by(created.desc(), ident.desc()).limit(size + 1)
    ).all()
    has_more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if has_more else None
    return Page[Any](
        data=[render(r) for r in rows],
        has_more=has_more,
        next_cursor=_encode(getattr(last, order_column), last.id) if last else None,
    )
