"""The claiming half of a dispatcher: which due deliveries it locks (each endpoint within its
share of the flight in progress), and one turn's transaction that records, fans out and claims.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, and_, or_, select, text, update

from sync_server.db import utcnow
from sync_server.models import WebhookDelivery, WebhookEndpoint, WebhookFanout, WebhookMessage
from sync_server.models.webhooks import DUE_CONDITION
from sync_server.security import SecretBox
from sync_server.webhooks.outbox import (
    FAN_OUT_BATCH,
    SENDING_COLUMNS,
    FanOut,
    apply_fan_out,
    fan_out,
    plan_fan_out,
)
from sync_server.webhooks.recording import Attempted, Job, Outcome, prepare, write

__all__ = ["Claimer", "Flight", "Turn"]

ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
MESSAGES: Table = WebhookMessage.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
FANOUT: Table = WebhookFanout.__table__  # type: ignore[assignment]

# word for word the condition of the partial index ix_deliveries_due (SQLite uses it only then)
_DUE = text(DUE_CONDITION)
SLOW_MS = 2000  # an attempt this long (or a timeout, a refused connection) marks a slow endpoint
SLOW_CAP = 2  # attempts in flight to a slow or failing endpoint, per dispatcher


class Flight:
    """What this dispatcher has claimed and not yet recorded: up to `size` deliveries (a few per
    attempt it may have in flight, so claims are few and large). One endpoint may have at most
    `cap` attempts in flight (`SLOW_CAP` while it is slow or failing), three quarters of the
    `threads` (attempts in flight at once): the last quarter is always left for the others, so
    one slow endpoint never delays the rest."""

    def __init__(self, size: int, threads: int | None = None) -> None:
        threads = threads or size
        self.size = size
        self.floor = max(1, size // 2)  # claim when half of it is free: fewer, larger claims
        self.cap = max(1, threads - threads // 4)
        self.cond = threading.Condition()
        self.claimed = 0
        self.sending: Counter[str] = Counter()
        self.slow: dict[str, bool] = {}

    def room(self) -> int:
        with self.cond:
            return self.size - self.claimed

    def worth_claiming(self, recording: int = 0) -> bool:
        """Half the flight is free, counting `recording` attempts about to be recorded."""
        with self.cond:
            room = self.size - self.claimed + recording
            return room >= self.floor or (room > 0 and self.claimed == recording)

    def _cap(self, endpoint_id: str, failing: bool = False) -> int:
        """`failing`: what the database says, until this dispatcher has seen an attempt."""
        return SLOW_CAP if self.slow.get(endpoint_id, failing) else self.cap

    def full(self) -> list[str]:
        """Endpoints that may not be sent more right now (left out of the next claim)."""
        with self.cond:
            return sorted(e for e, n in self.sending.items() if n >= self._cap(e))

    def pick(
        self, candidates: Sequence[Any], room: int, taken: Counter[str] | None = None
    ) -> list[str]:
        """The ids to claim among due `(id, endpoint_id, failing_since)` rows, oldest first;
        `taken` counts what this turn already took per endpoint (and is updated)."""
        taken = Counter() if taken is None else taken
        ids: list[str] = []
        with self.cond:
            for row in candidates:
                if len(ids) >= room:
                    break
                cap = self._cap(row.endpoint_id, row.failing_since is not None)
                if self.sending[row.endpoint_id] + taken[row.endpoint_id] < cap:
                    ids.append(row.id)
                    taken[row.endpoint_id] += 1
        return ids

    def add(self, jobs: Sequence[Job]) -> None:
        with self.cond:
            self.claimed += len(jobs)
            for job in jobs:
                self.sending[job.endpoint_id] += 1
                self.slow.setdefault(job.endpoint_id, job.failing_since is not None)

    def sent(self, endpoint_id: str, outcome: Outcome | None) -> bool:
        """One attempt is over (not yet recorded); answers whether its endpoint was full."""
        with self.cond:
            was_full = self.sending[endpoint_id] >= self._cap(endpoint_id)
            self.sending[endpoint_id] -= 1
            if self.sending[endpoint_id] <= 0:
                del self.sending[endpoint_id]
            if outcome is not None:
                self.slow[endpoint_id] = outcome.status_code is None or (
                    outcome.duration_ms > SLOW_MS
                )
            self.cond.notify_all()
            return was_full

    def recorded(self, count: int) -> None:
        with self.cond:
            self.claimed -= count
            self.cond.notify_all()

    def wait_sent(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: not self.sending)


class Claimer:
    """How a `Dispatcher` claims: the fan-out, the claim and a turn's transaction (the
    dispatcher sets these attributes)."""

    engine: Engine
    reader: Engine  # the engine without SQLite's write lock, for reads
    schedule: list[float]
    claim_for: timedelta
    sender: str
    box: SecretBox  # opens the endpoints' sealed signing secrets

    # -- claiming --------------------------------------------------------------------------
    def claim(self, limit: int) -> list[Job]:
        """Fan out new messages and lock up to `limit` due deliveries for the claim time, in one
        short transaction."""
        if not self._anything_due(None):
            return []
        with self.engine.begin() as conn:
            fan_out(conn)
            ids = self._lock_due(conn, limit, None)[0]
        return self._jobs(ids)

    def _due(self, now: datetime, flight: Flight | None) -> Any:
        due = and_(
            _DUE,
            DELIVERIES.c.next_attempt_at <= now,
            or_(DELIVERIES.c.locked_until.is_(None), DELIVERIES.c.locked_until < now),
        )
        full = flight.full() if flight is not None else []
        return and_(due, DELIVERIES.c.endpoint_id.not_in(full)) if full else due

    def _anything_due(self, flight: Flight | None) -> bool:
        """A message to fan out, or a delivery due (to an endpoint with room in `flight`)."""
        with self.reader.connect() as conn:  # idle polls take no write lock
            if conn.execute(select(FANOUT.c.message_id).limit(1)).first() is not None:
                return True
            return self._due_exists(conn, flight)

    def _due_exists(self, conn: Connection, flight: Flight | None) -> bool:
        query = select(DELIVERIES.c.id).where(self._due(utcnow(), flight)).limit(1)
        return conn.execute(query).first() is not None

    def candidates(self, now: datetime, flight: Flight | None, limit: int) -> Any:
        """The oldest due deliveries, read in `ix_deliveries_due` order: the claim's cost grows
        with its size, not with the backlog."""
        return (
            select(DELIVERIES.c.id, DELIVERIES.c.endpoint_id, ENDPOINTS.c.failing_since)
            .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
            .where(self._due(now, flight))
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit * 2 if flight is not None else limit)
            # SKIP LOCKED on PostgreSQL; on SQLite, BEGIN IMMEDIATE already serializes writers
            .with_for_update(skip_locked=True, of=DELIVERIES)
        )

    def _lock_due(
        self,
        conn: Connection,
        limit: int,
        flight: Flight | None,
        taken: Counter[str] | None = None,
    ) -> tuple[list[str], bool]:
        """The claim, in the caller's transaction: lock the oldest due deliveries (with a
        `flight`, leaving out endpoints that already have their share of it; the caller adds
        the jobs to it once committed). Answers their ids, and whether it took every due
        delivery it saw (a trickle, not a backlog)."""
        now = utcnow()
        rows = conn.execute(self.candidates(now, flight, limit)).all()
        drained = len(rows) < (limit * 2 if flight is not None else limit)
        ids = flight.pick(rows, limit, taken) if flight is not None else [r.id for r in rows]
        if ids:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(ids))
                .values(locked_until=now + self.claim_for)
            )
        return ids, drained

    def _claim_fresh(
        self, plan: FanOut, flight: Flight, limit: int, taken: Counter[str], now: datetime
    ) -> list[dict[str, Any]]:
        """Of the deliveries `plan` will create, those this dispatcher sends at once (as many as
        `flight` has room for, each endpoint within its share): written already claimed, they
        need no claim of their own."""
        if not limit or not plan.deliveries:
            return []
        candidates = [
            _Candidate(d["id"], d["endpoint_id"], plan.endpoints[d["endpoint_id"]].failing_since)
            for d in plan.deliveries
        ]
        chosen = set(flight.pick(candidates, limit, taken))
        fresh = [d for d in plan.deliveries if d["id"] in chosen]
        for row in fresh:
            row["locked_until"] = now + self.claim_for
        return fresh

    def _jobs(self, ids: Sequence[str]) -> list[Job]:
        """What sending the claimed deliveries `ids` takes, read after the claim committed (they
        are ours until the claim lapses: nothing of this needs the write lock)."""
        if not ids:
            return []
        now = utcnow()
        with self.reader.connect() as conn:
            details = conn.execute(
                select(
                    DELIVERIES.c.id,
                    DELIVERIES.c.attempts,
                    MESSAGES.c.id.label("message_id"),
                    MESSAGES.c.body,
                    ENDPOINTS.c.id.label("endpoint_id"),
                    *SENDING_COLUMNS,
                )
                .join(MESSAGES, MESSAGES.c.id == DELIVERIES.c.message_id)
                .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                .where(DELIVERIES.c.id.in_(ids))
            ).all()
        return [_job(r, now, self.box) for r in details]

    def _turn(self, pending: Sequence[Attempted], room: int, limit: int, flight: Flight) -> Turn:
        """One turn's transaction: record `pending`, fan out new messages (those of their
        deliveries that fit in `room` written already claimed), and claim up to `limit` older
        due deliveries if any wait. All that can be read and built is before the write lock is
        taken: on SQLite a scan at the door waits for this transaction."""
        dialect = self.engine.dialect
        now = utcnow()
        recording = prepare(
            pending, schedule=self.schedule, sender=self.sender, now=now, dialect=dialect
        )
        with self.reader.connect() as conn:
            plan = plan_fan_out(conn)
            older = bool(limit) and self._due_exists(conn, flight)
        taken: Counter[str] = Counter()
        fresh = self._claim_fresh(plan, flight, room, taken, now)
        plan = plan.bind(dialect)
        all_fresh = len(fresh) == len(plan.deliveries) and len(plan.message_ids) < FAN_OUT_BATCH
        claimed: list[str] = []
        drained = all_fresh and not older  # no backlog: every new delivery taken, none older
        with self.engine.begin() as conn:
            write(conn, recording)
            messages, endpoints = apply_fan_out(conn, plan)
            if older and limit > len(fresh):
                claimed, drained = self._lock_due(conn, limit - len(fresh), flight, taken)
                drained = drained and all_fresh
        fresh = [d for d in fresh if d["message_id"] in messages and d["endpoint_id"] in endpoints]
        return Turn(plan, fresh, claimed, drained, now, self.box)


@dataclass(frozen=True, slots=True)
class Turn:
    """What a turn's transaction wrote: the deliveries it wrote claimed (`fresh`, sent from
    `plan`), the older ones it claimed, and whether it left no backlog."""

    plan: FanOut
    fresh: list[dict[str, Any]]
    claimed: list[str]
    drained: bool
    now: datetime
    box: SecretBox

    def fresh_jobs(self) -> list[Job]:
        return [_fresh_job(row, self.plan, self.now, self.box) for row in self.fresh]


class _Candidate(NamedTuple):
    id: str
    endpoint_id: str
    failing_since: datetime | None


def _fresh_job(delivery: dict[str, Any], plan: FanOut, now: datetime, box: SecretBox) -> Job:
    """The job of a delivery written already claimed by this dispatcher's fan-out."""
    message_id, endpoint_id = delivery["message_id"], delivery["endpoint_id"]
    body, endpoint = plan.bodies[message_id], plan.endpoints[endpoint_id]
    return _job_of(delivery["id"], 0, message_id, body, endpoint_id, endpoint, now, box)


def _job(row: Any, now: datetime, box: SecretBox) -> Job:
    """The job of a claimed delivery's row (`Dispatcher._jobs`)."""
    return _job_of(row.id, row.attempts, row.message_id, row.body, row.endpoint_id, row, now, box)


def _job_of(
    delivery_id: str,
    attempts: int,
    message_id: str,
    body: str,
    endpoint_id: str,
    endpoint: Any,
    now: datetime,
    box: SecretBox,
) -> Job:
    """A job from a delivery and its endpoint's `SENDING_COLUMNS` (secrets opened from their
    sealed form); the previous secret signs too while its rotation window lasts."""
    secrets: tuple[str, ...] = (box.open(endpoint.secret),)
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until and until > now:
        secrets = (*secrets, box.open(endpoint.previous_secret))
    return Job(
        delivery_id,
        attempts,
        message_id,
        body,
        endpoint_id,
        endpoint.url,
        bool(endpoint.active),
        secrets,
        endpoint.failing_since,
    )
