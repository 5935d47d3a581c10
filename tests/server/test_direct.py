"""sync_server.direct: statements run on the driver's cursor write and read exactly what
SQLAlchemy's own `conn.execute` would, in the caller's transaction, and fail the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Text, bindparam, cast, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shared.ids import id_bytes
from sync_server.db import make_engine
from sync_server.direct import Direct
from sync_server.migrate import upgrade
from sync_server.models import Organization, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from sync_server.models import WebhookMessage as Message
from sync_server.models.base import new_ordered_id

ORGS = Organization.__table__
ENDPOINTS = WebhookEndpoint.__table__
MESSAGES = Message.__table__
DELIVERIES = WebhookDelivery.__table__
ATTEMPTS = WebhookAttempt.__table__
AT = datetime(2026, 6, 12, 18, 4, 11, 250_000, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(ORGS).values(id="org_1", name="Acme", created_at=AT))
        conn.execute(
            insert(ENDPOINTS).values(
                id="we_1",
                organization_id="org_1",
                url="https://example.com/hook",
                events=["checkin.accepted", "attendee.registered"],
                event_ids=[],
                secret="whsec_x",
                created_at=AT,
                updated_at=AT,
            )
        )
    yield engine
    engine.dispose()


def _message(n: int) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "organization_id": "org_1",
        "event_id": None if n % 2 else f"evt_{n}",
        "type": "checkin.accepted",
        "body": json.dumps({"n": n, "name": "Zoë \u2603"}, ensure_ascii=False),
        "created_at": AT + timedelta(microseconds=n),
    }


def _delivery(n: int, message: str) -> dict[str, Any]:
    return {
        "id": f"dlv_{n}",
        "message_id": message,
        "endpoint_id": "we_1",
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": AT + timedelta(seconds=n),
        "locked_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": AT,
        "updated_at": AT,
    }


def _rows(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]


def test_inserts_read_back_as_sqlalchemy_writes_them(engine: Engine) -> None:
    """Half the rows through Direct, half through conn.execute: read back through SQLAlchemy,
    every value (aware datetimes, NULLs, unicode, JSON) is the same kind of value."""
    with engine.begin() as conn:
        messages = Direct(insert(MESSAGES))
        messages.many(conn, [_message(0)])  # one row
        messages.many(conn, [_message(n) for n in range(1, 4)])  # a multi-row statement
        messages.many(conn, [_message(n) for n in range(4, 24)])  # an executemany
        conn.execute(insert(MESSAGES), [_message(n) for n in range(24, 28)])
        Direct(insert(DELIVERIES)).many(conn, [_delivery(1, "msg_1"), _delivery(2, "msg_2")])
        conn.execute(insert(DELIVERIES), [_delivery(3, "msg_5")])
        attempts = [
            {
                "id": f"wat_{n}",
                "delivery_id": "dlv_1",
                "attempted_at": AT,
                "status_code": 204 if n else None,
                "duration_ms": 3,
                "response_excerpt": None,
                "error": None if n else "refused",
                "details": {"attempt": n + 1, "sender": "host:1"},
            }
            for n in range(2)
        ]
        Direct(insert(ATTEMPTS)).many(conn, attempts[:1])
        conn.execute(insert(ATTEMPTS), attempts[1:])
    stored = _rows(engine, MESSAGES)
    assert sorted(stored) == sorted(tuple(_message(n).values()) for n in range(28))
    assert [r[5] for r in _rows(engine, DELIVERIES)] == [
        AT + timedelta(seconds=n) for n in (1, 2, 3)
    ]
    logged = _rows(engine, ATTEMPTS)
    assert [r[7] for r in logged] == [
        {"attempt": 1, "sender": "host:1"},
        {"attempt": 2, "sender": "host:1"},
    ]
    assert logged[0][2] == logged[1][2] == AT


def test_updates_and_queries_with_named_parameters(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(MESSAGES), [_message(1)])
        conn.execute(insert(DELIVERIES), [_delivery(n, "msg_1") for n in range(3)])
        settle = Direct(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == bindparam("b_id"), DELIVERIES.c.attempts == bindparam("b_n"))
            .values(state=bindparam("b_state"), locked_until=bindparam("b_until"))
        )
        later = AT + timedelta(hours=1)
        settle.many(
            conn,
            [
                {"b_id": "dlv_0", "b_n": 0, "b_state": "succeeded", "b_until": later},
                {"b_id": "dlv_1", "b_n": 7, "b_state": "succeeded", "b_until": later},  # fenced
            ],
        )
        query = Direct(
            select(DELIVERIES.c.id, DELIVERIES.c.state, cast(ENDPOINTS.c.events, Text))
            .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
            .where(DELIVERIES.c.message_id == bindparam("m"))
            .order_by(DELIVERIES.c.id)
        )
        rows = query.rows(conn, {"m": "msg_1"})
    assert [r[:2] for r in rows] == [
        ("dlv_0", "succeeded"),
        ("dlv_1", "pending"),
        ("dlv_2", "pending"),
    ]
    assert all(isinstance(r[2], str) and "checkin.accepted" in r[2] for r in rows)
    states = {r[0]: (r[3], r[6]) for r in _rows(engine, DELIVERIES)}
    assert states["dlv_0"] == ("succeeded", later)
    assert states["dlv_1"] == ("pending", None)


def test_a_rolled_back_transaction_keeps_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        Direct(insert(MESSAGES)).many(conn, [_message(1)])
        raise RuntimeError("the scan failed after its outbox write")
    assert _rows(engine, MESSAGES) == []


def test_driver_errors_come_out_as_sqlalchemy_errors(engine: Engine) -> None:
    """The dispatcher catches SQLAlchemyError to outlive a database hiccup: a driver error must
    not slip past it; the transaction is rolled back whole."""
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        Direct(insert(MESSAGES)).many(conn, [_message(1)])
        Direct(insert(ATTEMPTS)).many(
            conn,
            [
                {
                    "id": "wat_1",
                    "delivery_id": "dlv_missing",
                    "attempted_at": AT,
                    "status_code": 200,
                    "duration_ms": 1,
                    "response_excerpt": None,
                    "error": None,
                    "details": {},
                }
            ],
        )
    assert isinstance(caught.value, SQLAlchemyError)
    assert _rows(engine, MESSAGES) == []
    with engine.begin() as conn:  # the pool's connection is still good
        Direct(insert(MESSAGES)).many(conn, [_message(2)])
    assert [r[0] for r in _rows(engine, MESSAGES)] == ["msg_2"]


def test_outside_a_transaction_it_takes_sqlalchemys_path(engine: Engine) -> None:
    """Nothing runs on the driver outside the caller's transaction: on a connection that has
    not begun one, `conn.execute` runs (and begins it), so a rollback still undoes it."""
    with engine.connect() as conn:
        assert not conn.in_transaction()
        Direct(insert(MESSAGES)).many(conn, [_message(1)])
        assert conn.in_transaction()
        rows = Direct(select(MESSAGES.c.id)).rows(conn, {})
        assert rows == [("msg_1",)]
        conn.rollback()
    assert _rows(engine, MESSAGES) == []


def test_rows_bound_ahead_write_what_sqlalchemy_writes(engine: Engine) -> None:
    """`Direct.bound` converts the values before the transaction; run inside it, the rows read
    back as SQLAlchemy's own writes (on a connection of another dialect, or outside a
    transaction, it falls back to the ordinary path)."""
    bound = Direct(insert(MESSAGES)).bound(engine.dialect, [_message(n) for n in range(5)])
    with engine.begin() as conn:
        bound.run(conn)
        conn.execute(insert(MESSAGES), [_message(n) for n in range(5, 8)])
    assert sorted(_rows(engine, MESSAGES)) == sorted(tuple(_message(n).values()) for n in range(8))
    with engine.connect() as conn:
        Direct(insert(MESSAGES)).bound(engine.dialect, [_message(9)]).run(conn)
        conn.rollback()
    assert len(_rows(engine, MESSAGES)) == 8


def test_outbox_ids_start_with_their_time() -> None:
    """Messages, deliveries and attempts get ids whose first 48 bits are milliseconds: the same
    26-character form as every id, 80 random bits, and in their indexes next to each other."""
    before = time.time_ns() // 1_000_000
    made = [new_ordered_id("dlv") for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    stamps = [int.from_bytes(id_bytes(i, "dlv")[:6], "big") for i in made]
    assert all(len(i) == 30 and i.startswith("dlv_") for i in made)
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    assert len(set(made)) == len(made)
    assert len({id_bytes(i, "dlv")[6:] for i in made}) == len(made)
