"""Answers kept under an `Idempotency-Key` (SPEC section 13): per organization, with the hash of
the request that first used the key and its answer, for 24 hours, in the database so every worker
and server sees them.

    claim = begin(engine, org_id, key, request_hash, now=now)   # Started, Replay, Reused, Busy
    finish(engine, org_id, key, status=201, content_type="application/json", body=b"{...}")
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from sync_server.direct import Direct
from sync_server.models import IdempotencyRecord

__all__ = [
    "KEEP_FOR", "Busy", "Replay", "Reused", "Started", "abandon", "begin", "finish", "keep",
    "keep_unless_taken", "take",
]  # fmt: skip

KEEP_FOR = timedelta(hours=24)
RECORDS: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
_WHERE = and_(RECORDS.c.organization_id == bindparam("org"), RECORDS.c.key == bindparam("k"))
_FIND = select(
    RECORDS.c.request_hash,
    RECORDS.c.status,
    RECORDS.c.content_type,
    RECORDS.c.body,
    RECORDS.c.expires_at,
).where(_WHERE)
_FINISH = (
    update(RECORDS)
    .where(_WHERE)
    .values(
        status=bindparam("b_status"), content_type=bindparam("b_type"), body=bindparam("b_body")
    )
)
_KEEP = Direct(_FINISH)
_FORGET = delete(RECORDS).where(_WHERE)
_PURGE = delete(RECORDS).where(RECORDS.c.expires_at < bindparam("now"))
PURGE_ONE_IN = 200  # a start in this many also deletes the expired records


@dataclass(frozen=True, slots=True)
class Started:
    """The key is new (or expired): answer the request, then `finish` or `abandon`."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The same request was answered already: send this answer again."""

    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Reused:
    """The key was used for another request (another body, path or method)."""


@dataclass(frozen=True, slots=True)
class Busy:
    """The first request with this key is still being answered."""


Claim = Started | Replay | Reused | Busy


def begin(engine: Engine, org: str, key: str, request_hash: str, *, now: datetime) -> Claim:
    """Take the key for this request, or say what was answered under it, in a short transaction
    of its own."""
    for _ in range(3):  # the record went away between the insert and the read: try again
        with engine.begin() as conn:
            claim = take(conn, org, key, request_hash, now=now)
        if claim is not None:
            return claim
    return Busy()


def take(conn: Connection, org: str, key: str, request_hash: str, *, now: datetime) -> Claim | None:
    """`begin` inside the caller's transaction: one insert that does nothing when the key is
    taken (then one read). None when the record went away in between (try again)."""
    values = _record(org, key, request_hash, now)
    statement = _take_statement(conn)
    if random.randrange(PURGE_ONE_IN) == 0:
        conn.execute(_PURGE, {"now": now})
    if statement.rows(conn, values):
        return Started()
    row = conn.execute(_FIND, {"org": org, "k": key}).first()
    if row is None:
        return None
    if row.expires_at <= now:  # a record of yesterday: the key is new again
        conn.execute(_FORGET, {"org": org, "k": key})
        statement.run(conn, values)
        return Started()
    if row.request_hash != request_hash:
        return Reused()
    if row.status is None:
        return Busy()
    return Replay(row.status, row.content_type, bytes(row.body or b""))


def _record(org: str, key: str, request_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "organization_id": org,
        "key": key,
        "request_hash": request_hash,
        "status": None,
        "content_type": None,
        "body": None,
        "created_at": now,
        "expires_at": now + KEEP_FOR,
    }


def _take_statement(conn: Connection) -> Direct:
    """`INSERT … ON CONFLICT DO NOTHING` in the connection's dialect (built once per dialect,
    run on the driver's cursor: it is in every keyed scan's transaction)."""
    name = conn.dialect.name
    statement = _TAKE.get(name)
    if statement is None:
        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        statement = (
            insert(RECORDS)
            .on_conflict_do_nothing(index_elements=["organization_id", "key"])
            .returning(RECORDS.c.key)  # a row when the key was taken now (rowcount is not kept)
        )
        _TAKE[name] = Direct(statement)
    return _TAKE[name]


_TAKE: dict[str, Direct] = {}


def finish(
    engine: Engine, org: str, key: str, *, status: int, content_type: str | None, body: bytes
) -> None:
    """Keep the first answer under the key."""
    with engine.begin() as conn:
        keep(conn, org, key, status=status, content_type=content_type, body=body)


def keep(
    conn: Connection, org: str, key: str, *, status: int, content_type: str | None, body: bytes
) -> None:
    """`finish` inside the caller's transaction (the one that took the key)."""
    _KEEP.run(
        conn, {"org": org, "k": key, "b_status": status, "b_type": content_type, "b_body": body}
    )


def keep_unless_taken(
    engine: Engine, answer: Replay, org: str, key: str, request_hash: str, *, now: datetime
) -> None:
    """Keep an answer whose transaction (the one that took the key) was rolled back: the key is
    taken again with the answer, unless another request took it meanwhile."""
    values = _record(org, key, request_hash, now)
    values.update(status=answer.status, content_type=answer.content_type, body=answer.body)
    with engine.begin() as conn:
        _take_statement(conn).run(conn, values)


def abandon(engine: Engine, org: str, key: str) -> None:
    """Forget the key: the answer is not one to repeat (a failure, a refusal, a retry-later), so
    the same request may be tried again."""
    with engine.begin() as conn:
        conn.execute(_FORGET, {"org": org, "k": key})
