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

from sqlalchemy import Table, and_, bindparam, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from sync_server.models import IdempotencyRecord

__all__ = ["KEEP_FOR", "Busy", "Replay", "Reused", "Started", "abandon", "begin", "finish"]

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
_INSERT = insert(RECORDS)
_FINISH = (
    update(RECORDS)
    .where(_WHERE)
    .values(
        status=bindparam("b_status"), content_type=bindparam("b_type"), body=bindparam("b_body")
    )
)
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
    """Take the key for this request, or say what was answered under it."""
    for _ in range(3):  # a race with another server: the loser reads the winner's record
        with engine.begin() as conn:
            row = conn.execute(_FIND, {"org": org, "k": key}).first()
            if row is not None and row.expires_at <= now:
                conn.execute(_FORGET, {"org": org, "k": key})
                row = None
            if row is None:
                if random.randrange(PURGE_ONE_IN) == 0:
                    conn.execute(_PURGE, {"now": now})
                try:
                    with conn.begin_nested():
                        conn.execute(
                            _INSERT,
                            {
                                "organization_id": org,
                                "key": key,
                                "request_hash": request_hash,
                                "status": None,
                                "content_type": None,
                                "body": None,
                                "created_at": now,
                                "expires_at": now + KEEP_FOR,
                            },
                        )
                except IntegrityError:
                    continue
                return Started()
        if row.request_hash != request_hash:
            return Reused()
        if row.status is None:
            return Busy()
        return Replay(row.status, row.content_type, bytes(row.body or b""))
    return Busy()


def finish(
    engine: Engine, org: str, key: str, *, status: int, content_type: str | None, body: bytes
) -> None:
    """Keep the first answer under the key."""
    with engine.begin() as conn:
        conn.execute(
            _FINISH,
            {"org": org, "k": key, "b_status": status, "b_type": content_type, "b_body": body},
        )


def abandon(engine: Engine, org: str, key: str) -> None:
    """Forget the key: the answer is not one to repeat (a failure, a refusal, a retry-later), so
    the same request may be tried again."""
    with engine.begin() as conn:
        conn.execute(_FORGET, {"org": org, "k": key})
