"""The transactional outbox: webhook messages, written in the caller's transaction so a change
and the message it causes commit (or vanish) together, with the endpoints subscribed at that
moment; a dispatcher later turns each into one delivery per endpoint (`fan_out`).

    message_id = emit(conn, organization_id=org, event_id=eid, type="checkin.accepted", data=...)
    fan_out(conn)   # in a dispatcher's transaction: the deliveries of the messages written since
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, Text, bindparam, cast, delete, insert, select, true
from sqlalchemy.engine import Dialect

from shared.webhooks import envelope, subscribes
from sync_server.db import utcnow
from sync_server.direct import Bound, Direct
from sync_server.errors import not_found
from sync_server.models import WebhookDelivery, WebhookEndpoint, WebhookFanout, WebhookMessage
from sync_server.models.base import new_ordered_id
from sync_server.webhooks.wakeup import notify

__all__ = [
    "SENDING_COLUMNS",
    "TEST_TYPE",
    "Emission",
    "FanOut",
    "Subscriber",
    "apply_fan_out",
    "emit",
    "emit_many",
    "enqueue_for_endpoint",
    "fan_out",
    "message_body",
    "plan_fan_out",
    "replay",
    "rfc3339",
    "subscribers",
    "wanted",
]

TEST_TYPE = "webhook.test"
ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
MESSAGES: Table = WebhookMessage.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
FANOUT: Table = WebhookFanout.__table__  # type: ignore[assignment]
FAN_OUT_BATCH = 1000  # messages a dispatcher turn fans out at the most


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An active endpoint of the organization and what it listens to."""

    endpoint_id: str
    events: frozenset[str]
    event_ids: frozenset[str]

    def wants(self, type: str, event_id: str | None) -> bool:
        if type == TEST_TYPE or not subscribes(self.events, type):
            return False
        return not self.event_ids or event_id in self.event_ids


def wanted(subs: Sequence[Subscriber], type: str, event_id: str | None) -> bool:
    """Whether anyone listens: build a payload only then."""
    return any(s.wants(type, event_id) for s in subs)


def rfc3339(value: datetime) -> str:
    """`2026-05-01T19:02:03.123Z`: the wire form of every time in a webhook."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"cannot put {type(value).__name__} in a webhook")


def message_body(message_id: str, type: str, data: dict[str, Any], now: datetime) -> str:
    """The JSON body sent to every endpoint: `shared.webhooks.envelope`."""
    return json.dumps(
        envelope(message_id, type, rfc3339(now), data),
        default=_default,
        separators=(",", ":"),
        ensure_ascii=False,
    )


# Every scan runs these in its transaction: compiled once, run on the driver's cursor
# (sync_server.direct), which took the outbox's cost in a scan from about 1.0 to 0.4 ms.
_SUBSCRIBERS = Direct(
    select(ENDPOINTS.c.id, cast(ENDPOINTS.c.events, Text), cast(ENDPOINTS.c.event_ids, Text)).where(
        ENDPOINTS.c.organization_id == bindparam("org"), ENDPOINTS.c.active == true()
    )
)
_INSERT_MESSAGES = Direct(insert(MESSAGES))
_INSERT_FANOUT = Direct(insert(FANOUT))
_INSERT_DELIVERIES = Direct(insert(DELIVERIES))


def subscribers(conn: Connection, organization_id: str) -> list[Subscriber]:
    """The organization's active endpoints (one indexed SELECT); query once per group."""
    return [_subscriber(*row) for row in _SUBSCRIBERS.rows(conn, {"org": organization_id})]


@lru_cache(maxsize=4096)
def _subscriber(endpoint_id: str, events: str | None, event_ids: str | None) -> Subscriber:
    """One endpoint's subscription, parsed once per distinct stored text."""
    return Subscriber(endpoint_id, _texts(events), _texts(event_ids))


def _texts(stored: str | None) -> frozenset[str]:
    return frozenset(json.loads(stored or "null") or ())


@dataclass(frozen=True, slots=True)
class Emission:
    """One message to emit: the event it belongs to, its type and its payload."""

    event_id: str | None
    type: str
    data: dict[str, Any]


def emit_many(
    conn: Connection,
    subs: Sequence[Subscriber],
    *,
    organization_id: str,
    items: Iterable[Emission],
) -> list[str | None]:
    """Write every item that someone subscribes to, in bulk, with the endpoints to deliver it to
    (a `webhook_fanout` row each); answers the message ids (or None)."""
    if not subs:
        return [None for _ in items]
    now = utcnow()
    messages: list[dict[str, Any]] = []
    fanout: list[dict[str, Any]] = []
    ids: list[str | None] = []
    for item in items:
        targets = [s.endpoint_id for s in subs if s.wants(item.type, item.event_id)]
        if not targets:
            ids.append(None)
            continue
        message_id = new_ordered_id("msg")
        ids.append(message_id)
        messages.append(_message_row(message_id, organization_id, item, now))
        fanout.append({"message_id": message_id, "endpoint_ids": ",".join(targets)})
    if messages:
        _INSERT_MESSAGES.many(conn, messages)
        _INSERT_FANOUT.many(conn, fanout)
        notify(conn)
    return ids


_WAITING = (
    select(FANOUT.c.message_id, FANOUT.c.endpoint_ids, MESSAGES.c.created_at, MESSAGES.c.body)
    .join(MESSAGES, MESSAGES.c.id == FANOUT.c.message_id)
    .order_by(MESSAGES.c.created_at)
)
# what sending to an endpoint takes (a dispatcher's `Job`)
SENDING_COLUMNS = (
    ENDPOINTS.c.url,
    ENDPOINTS.c.active,
    ENDPOINTS.c.secret,
    ENDPOINTS.c.previous_secret,
    ENDPOINTS.c.previous_secret_until,
    ENDPOINTS.c.failing_since,
)
_ENDPOINT_DETAILS = select(ENDPOINTS.c.id, *SENDING_COLUMNS)


@dataclass(frozen=True, slots=True)
class FanOut:
    """Messages waiting in `webhook_fanout` and their deliveries, read and built ahead of the
    transaction that writes them (`plan_fan_out`, then `apply_fan_out`). A dispatcher may mark
    some deliveries claimed (their `locked_until`) before `bind`: it sends those without a
    claim of its own, from `bodies` and `endpoints`."""

    message_ids: list[str]
    deliveries: list[dict[str, Any]]
    bodies: dict[str, str]  # message id -> body
    endpoints: dict[str, Any]  # endpoint id -> its row (`_ENDPOINT_DETAILS`), those that exist
    bound: Bound | None = None

    def bind(self, dialect: Dialect) -> FanOut:
        """The same plan with the deliveries' values converted for `dialect`."""
        return replace(self, bound=_INSERT_DELIVERIES.bound(dialect, self.deliveries))


def plan_fan_out(conn: Connection, limit: int = FAN_OUT_BATCH) -> FanOut:
    """Up to `limit` waiting messages, oldest first, with one delivery each per endpoint that
    exists now, due at the message's time."""
    waiting = conn.execute(_WAITING.limit(limit)).all()
    if not waiting:
        return FanOut([], [], {}, {})
    wanted = sorted({e for row in waiting for e in row.endpoint_ids.split(",")})
    endpoints = {
        row.id: row for row in conn.execute(_ENDPOINT_DETAILS.where(ENDPOINTS.c.id.in_(wanted)))
    }
    deliveries = [
        _delivery_row(row.message_id, endpoint_id, row.created_at)
        for row in waiting
        for endpoint_id in row.endpoint_ids.split(",")
        if endpoint_id in endpoints  # an endpoint deleted since has nothing to receive
    ]
    bodies = {row.message_id: row.body for row in waiting}
    return FanOut([row.message_id for row in waiting], deliveries, bodies, endpoints)


def apply_fan_out(conn: Connection, plan: FanOut) -> tuple[set[str], set[str]]:
    """In the caller's transaction: take the planned messages still waiting (on PostgreSQL,
    skipping those another dispatcher is fanning out; on SQLite the write lock already keeps
    others out), write their deliveries, delete them from `webhook_fanout`. Answers the ids of
    the messages it fanned out and of the endpoints it wrote deliveries for."""
    if not plan.message_ids:
        return set(), set()
    ids = plan.message_ids
    owned = set(
        conn.execute(
            select(FANOUT.c.message_id)
            .where(FANOUT.c.message_id.in_(ids))
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not owned:
        return owned, set()
    wanted = sorted(plan.endpoints)
    still = set(conn.execute(select(ENDPOINTS.c.id).where(ENDPOINTS.c.id.in_(wanted))).scalars())
    if plan.bound is not None and len(owned) == len(ids) and len(still) == len(wanted):
        plan.bound.run(conn)
    else:  # some were taken, or an endpoint was deleted, since the plan
        rows = [
            d for d in plan.deliveries if d["message_id"] in owned and d["endpoint_id"] in still
        ]
        _INSERT_DELIVERIES.many(conn, rows)
    conn.execute(delete(FANOUT).where(FANOUT.c.message_id.in_(sorted(owned))))
    return owned, still


def fan_out(conn: Connection, limit: int = FAN_OUT_BATCH) -> int:
    """Plan and apply in the caller's transaction: the deliveries of up to `limit` waiting
    messages. Answers how many messages."""
    return len(apply_fan_out(conn, plan_fan_out(conn, limit))[0])


def emit(
    conn: Connection,
    *,
    organization_id: str,
    event_id: str | None,
    type: str,
    data: dict[str, Any],
    subs: Sequence[Subscriber] | None = None,
) -> str | None:
    """Queue one message for every subscribed endpoint; None (nothing written) if nobody is."""
    if subs is None:
        subs = subscribers(conn, organization_id)
    return emit_many(
        conn, subs, organization_id=organization_id, items=[Emission(event_id, type, data)]
    )[0]


def enqueue_for_endpoint(
    conn: Connection, *, endpoint_id: str, organization_id: str, type: str, data: dict[str, Any]
) -> str:
    """A message with a single delivery to one endpoint (the `webhook.test` event)."""
    now = utcnow()
    message_id = new_ordered_id("msg")
    conn.execute(
        insert(MESSAGES).values(
            _message_row(message_id, organization_id, Emission(None, type, data), now)
        )
    )
    conn.execute(insert(DELIVERIES).values(_delivery_row(message_id, endpoint_id, now)))
    notify(conn)
    return message_id


def replay(conn: Connection, *, delivery_id: str) -> str:
    """A new pending delivery of the same message to the same endpoint; answers its id."""
    row = conn.execute(
        select(DELIVERIES.c.message_id, DELIVERIES.c.endpoint_id).where(
            DELIVERIES.c.id == delivery_id
        )
    ).first()
    if row is None:
        raise not_found("delivery")
    new = _delivery_row(row.message_id, row.endpoint_id, utcnow())
    conn.execute(insert(DELIVERIES).values(new))
    notify(conn)
    return str(new["id"])


def _message_row(
    message_id: str, organization_id: str, item: Emission, now: datetime
) -> dict[str, Any]:
    return {
        "id": message_id,
        "organization_id": organization_id,
        "event_id": item.event_id,
        "type": item.type,
        "body": message_body(message_id, item.type, item.data, now),
        "created_at": now,
    }


def _delivery_row(message_id: str, endpoint_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_ordered_id("dlv"),
        "message_id": message_id,
        "endpoint_id": endpoint_id,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "locked_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }
