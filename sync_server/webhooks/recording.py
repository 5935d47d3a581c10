"""What an attempt comes to: `settle` decides (pure) what one outcome does to its delivery and its
endpoint; `prepare` readies a batch of attempts outside any transaction, `write` writes it in
one (`record` does both).

    record(conn, [Attempted(job, outcome, at)], schedule=[5, 300], sender="host:123", now=now)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect

from sync_server.direct import Bound, Direct
from sync_server.metrics import count_attempt
from sync_server.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from sync_server.models.base import new_ordered_id

__all__ = [
    "DISABLE_AFTER",
    "Attempted",
    "EndpointChange",
    "Job",
    "Outcome",
    "Recording",
    "Settlement",
    "prepare",
    "record",
    "settle",
    "write",
]

ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
ATTEMPTS: Table = WebhookAttempt.__table__  # type: ignore[assignment]

DISABLE_AFTER = timedelta(days=5)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery with everything needed to send it."""

    delivery_id: str
    attempts: int
    message_id: str
    body: str
    endpoint_id: str
    url: str
    active: bool
    secrets: tuple[str, ...]
    failing_since: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one HTTP attempt came to (a value; `settle` decides what it means)."""

    status_code: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Attempted:
    """A job and its outcome (None: the endpoint was disabled, nothing was sent)."""

    job: Job
    outcome: Outcome | None
    at: datetime


class EndpointChange(StrEnum):
    """What an attempt does to its endpoint."""

    RECOVERED = "recovered"  # a success: it is no longer failing
    FAILING = "failing"  # the first failure: remember since when
    GONE = "gone"  # answered 410: disable
    DEAD = "dead"  # failing for 5 days: disable


@dataclass(frozen=True, slots=True)
class Settlement:
    """The delivery's new values and the change to its endpoint, if any."""

    delivery: dict[str, Any]
    endpoint: EndpointChange | None


def settle(
    job: Job,
    outcome: Outcome | None,
    *,
    now: datetime,
    schedule: Sequence[float],
    jitter: float = 1.0,
) -> Settlement:
    """Decide one attempt: success, 410, a retry `schedule[n-1] * jitter` seconds later (or
    Retry-After, if longer), or failed once the schedule is exhausted."""
    if outcome is None:
        values = _values(job.attempts, "failed", None, None, "the endpoint is disabled", now)
        return Settlement(values, None)
    attempts = job.attempts + 1
    code, error = outcome.status_code, outcome.error
    if outcome.ok:
        change = EndpointChange.RECOVERED if job.failing_since is not None else None
        return Settlement(_values(attempts, "succeeded", None, code, error, now), change)
    if code == 410:
        return Settlement(_values(attempts, "failed", None, code, error, now), EndpointChange.GONE)
    if job.failing_since is None:
        change = EndpointChange.FAILING
    elif now - job.failing_since > DISABLE_AFTER:
        change = EndpointChange.DEAD
    else:
        change = None
    if attempts > len(schedule):
        return Settlement(_values(attempts, "failed", None, code, error, now), change)
    wait = schedule[attempts - 1] * jitter
    if outcome.retry_after is not None:
        wait = max(wait, outcome.retry_after)
    due = now + timedelta(seconds=wait)
    return Settlement(_values(attempts, "retrying", due, code, error, now), change)


_SETTLED = (
    "attempts",
    "state",
    "next_attempt_at",
    "locked_until",
    "last_status_code",
    "last_error",
    "updated_at",
)


def _values(
    attempts: int,
    state: str,
    next_attempt_at: datetime | None,
    status_code: int | None,
    error: str | None,
    now: datetime,
) -> dict[str, Any]:
    return dict(
        zip(
            _SETTLED,
            (attempts, state, next_attempt_at, None, status_code, error, now),
            strict=True,
        )
    )


_SETTLE = (
    update(DELIVERIES)
    # the claim's fence: a delivery whose lock expired and that another worker attempted since
    # keeps that worker's result (our attempt is still logged)
    .where(DELIVERIES.c.id == bindparam("b_id"), DELIVERIES.c.attempts == bindparam("b_before"))
    .values({name: bindparam(f"b_{name}") for name in _SETTLED})
)


_INSERT_ATTEMPTS = Direct(insert(ATTEMPTS))
_SETTLE_MANY = Direct(_SETTLE)


@dataclass(frozen=True, slots=True)
class Recording:
    """A batch of attempts made ready to write (`prepare`, outside any transaction) so the
    writing transaction (`write`) holds SQLite's lock only for the statements themselves."""

    attempts: list[dict[str, Any]]
    settled: list[dict[str, Any]]
    changes: dict[str, tuple[EndpointChange, Job]]
    now: datetime
    bound: tuple[Bound, Bound] | None = None  # the two statements, values converted


def prepare(
    batch: Sequence[Attempted],
    *,
    schedule: Sequence[float],
    sender: str,
    now: datetime,
    dialect: Dialect | None = None,
) -> Recording:
    """Decide every attempt of `batch`: its log row, its delivery's new values, and what it
    does to its endpoint (folded per endpoint); with a `dialect`, the statements' values are
    converted here too."""
    attempts: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    changes: dict[str, tuple[EndpointChange, Job]] = {}
    for item in batch:
        outcome = item.outcome
        result = settle(
            item.job, outcome, now=now, schedule=schedule, jitter=random.uniform(0.9, 1.1)
        )
        settled.append(
            {"b_id": item.job.delivery_id, "b_before": item.job.attempts}
            | {f"b_{name}": value for name, value in result.delivery.items()}
        )
        if outcome is not None:
            count_attempt(outcome.ok)
            attempts.append(
                {
                    "id": new_ordered_id("wat"),
                    "delivery_id": item.job.delivery_id,
                    "attempted_at": item.at,
                    "status_code": outcome.status_code,
                    "duration_ms": outcome.duration_ms,
                    "response_excerpt": outcome.excerpt,
                    "error": outcome.error,
                    "details": {"attempt": item.job.attempts + 1, "sender": sender},
                }
            )
        if result.endpoint is not None:
            changes[item.job.endpoint_id] = _fold(changes.get(item.job.endpoint_id), result, item)
    bound = None
    if dialect is not None and settled:
        bound = (_INSERT_ATTEMPTS.bound(dialect, attempts), _SETTLE_MANY.bound(dialect, settled))
    return Recording(attempts, settled, changes, now, bound)


def write(conn: Connection, recording: Recording) -> None:
    """Log the attempts and settle their deliveries and endpoints, in the caller's transaction
    (a handful of statements, whatever the batch size)."""
    if not recording.settled:
        return
    if recording.bound is not None:
        for statement in recording.bound:
            statement.run(conn)
    else:
        _INSERT_ATTEMPTS.many(conn, recording.attempts)
        _SETTLE_MANY.many(conn, recording.settled)
    for endpoint_id, (change, job) in recording.changes.items():
        _change_endpoint(conn, endpoint_id, change, job, recording.now)


def record(
    conn: Connection,
    batch: Sequence[Attempted],
    *,
    schedule: Sequence[float],
    sender: str,
    now: datetime,
) -> None:
    """`prepare` and `write` a batch in the caller's transaction."""
    write(conn, prepare(batch, schedule=schedule, sender=sender, now=now))


def _fold(
    before: tuple[EndpointChange, Job] | None, result: Settlement, item: Attempted
) -> tuple[EndpointChange, Job]:
    """Several attempts to one endpoint in a batch: disabling wins, else the latest does."""
    assert result.endpoint is not None
    disabling = (EndpointChange.GONE, EndpointChange.DEAD)
    if before is not None and before[0] in disabling and result.endpoint not in disabling:
        return before
    return result.endpoint, item.job


def _change_endpoint(
    conn: Connection, endpoint_id: str, change: EndpointChange, job: Job, now: datetime
) -> None:
    where = ENDPOINTS.c.id == endpoint_id
    if change is EndpointChange.RECOVERED:
        statement = update(ENDPOINTS).where(where, ENDPOINTS.c.failing_since.is_not(None))
        conn.execute(statement.values(failing_since=None, updated_at=now))
    elif change is EndpointChange.FAILING:
        statement = update(ENDPOINTS).where(where, ENDPOINTS.c.failing_since.is_(None))
        conn.execute(statement.values(failing_since=now, updated_at=now))
    else:
        reason = (
            "the receiver answered 410 Gone"
            if change is EndpointChange.GONE
            else f"every delivery failed for 5 days (since {_iso(job.failing_since)})"
        )
        conn.execute(
            update(ENDPOINTS)
            .where(where)
            .values(active=False, disabled_reason=reason, updated_at=now)
        )


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "?"
