"""The dispatcher: claims due deliveries from the outbox in short transactions, POSTs each signed
message from a bounded pool of threads (one shared HTTP client) to the address the SSRF guard
checked, and records finished attempts in batches, one transaction per batch.

    Dispatcher(engine, settings).run_forever(stop)   # in the server, or in `doorcheck worker`
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine, Table, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from shared.webhooks import signature_headers
from sync_server import __version__
from sync_server.db import utcnow
from sync_server.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from sync_server.settings import Settings
from sync_server.webhooks.recording import Attempted, Job, Outcome, record
from sync_server.webhooks.ssrf import UnsafeUrl, resolve_target
from sync_server.webhooks.wakeup import Listener

__all__ = ["Dispatcher", "Outcome", "attempt_timeout", "parse_schedule"]

log = logging.getLogger("doorcheck.webhooks")

ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
MESSAGES: Table = WebhookMessage.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]

TIMEOUT_S = 10.0
EXCERPT_BYTES = 2048
DUE_STATES = ("pending", "retrying")
SLOW_MS = 2000  # an attempt this long (or a timeout, a refused connection) marks a slow endpoint
SLOW_CAP = 2  # attempts in flight to a slow or failing endpoint, per dispatcher
RECORD_BATCH = 500
RECORD_TRIES = 3


def parse_schedule(text: str) -> list[float]:
    """`"5,300,1800"` -> `[5.0, 300.0, 1800.0]`: the waits after the 1st, 2nd, 3rd failure."""
    return [float(part) for part in text.split(",") if part.strip()]


def attempt_timeout(claim_seconds: float) -> float:
    """10 s, or half the claim lock if that is shorter: an attempt ends long before its lock
    expires, so no other dispatcher can claim a delivery that is still being sent."""
    return min(TIMEOUT_S, claim_seconds / 2)


class _Flight:
    """What this dispatcher has claimed and not yet recorded. An endpoint may be sent at most
    `cap` attempts at once (`SLOW_CAP` while it is slow or failing): a quarter of the pool is
    always left for the others, so one slow endpoint never delays the rest."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.floor = max(1, size // 4)  # claim when at least this many slots are free
        self.cap = max(1, size - self.floor)
        self.cond = threading.Condition()
        self.claimed = 0
        self.sending: Counter[str] = Counter()
        self.slow: dict[str, bool] = {}

    def room(self) -> int:
        with self.cond:
            return self.size - self.claimed

    def worth_claiming(self) -> bool:
        with self.cond:
            room = self.size - self.claimed
            return room >= self.floor or (room > 0 and self.claimed == 0)

    def _cap(self, endpoint_id: str, failing: bool = False) -> int:
        """`failing`: what the database says, until this dispatcher has seen an attempt."""
        return SLOW_CAP if self.slow.get(endpoint_id, failing) else self.cap

    def full(self) -> list[str]:
        """Endpoints that may not be sent more right now (left out of the next claim)."""
        with self.cond:
            return sorted(e for e, n in self.sending.items() if n >= self._cap(e))

    def pick(self, candidates: Sequence[Any], room: int) -> list[str]:
        """The ids to claim among due `(id, endpoint_id, failing_since)` rows, oldest first."""
        taken: Counter[str] = Counter()
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


class Dispatcher:
    """Delivers the outbox; any number of dispatchers may share one PostgreSQL database."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_immediate=False)
        self.settings = settings
        self.schedule = parse_schedule(settings.webhook_retry_schedule)
        self.claim_for = timedelta(seconds=settings.webhook_claim_seconds)
        self.concurrency = concurrency or settings.webhook_concurrency
        self.sender = f"{socket.gethostname()}:{os.getpid()}"
        self.wake = threading.Event()
        self.client = httpx.Client(
            transport=transport,
            timeout=attempt_timeout(settings.webhook_claim_seconds),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    # -- claiming --------------------------------------------------------------------------
    def claim(self, limit: int, flight: _Flight | None = None) -> list[Job]:
        """Lock up to `limit` due deliveries for the claim time, in one short transaction;
        with a `flight`, leave out endpoints that already have their share of it."""
        now = utcnow()
        due = and_(
            DELIVERIES.c.state.in_(DUE_STATES),
            DELIVERIES.c.next_attempt_at <= now,
            or_(DELIVERIES.c.locked_until.is_(None), DELIVERIES.c.locked_until < now),
        )
        full = flight.full() if flight is not None else []
        if full:
            due = and_(due, DELIVERIES.c.endpoint_id.not_in(full))
        with self.reader.connect() as conn:  # idle polls take no write lock
            if conn.execute(select(DELIVERIES.c.id).where(due).limit(1)).first() is None:
                return []
        candidates = (
            select(DELIVERIES.c.id, DELIVERIES.c.endpoint_id, ENDPOINTS.c.failing_since)
            .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
            .where(due)
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit * 2 if flight is not None else limit)
            # SKIP LOCKED on PostgreSQL; on SQLite, BEGIN IMMEDIATE already serializes writers
            .with_for_update(skip_locked=True, of=DELIVERIES)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(candidates).all()
            ids = flight.pick(rows, limit) if flight is not None else [r.id for r in rows]
            if not ids:
                return []
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(ids))
                .values(locked_until=now + self.claim_for)
            )
            details = conn.execute(
                select(
                    DELIVERIES.c.id,
                    DELIVERIES.c.attempts,
                    MESSAGES.c.id.label("message_id"),
                    MESSAGES.c.body,
                    ENDPOINTS.c.id.label("endpoint_id"),
                    ENDPOINTS.c.url,
                    ENDPOINTS.c.active,
                    ENDPOINTS.c.secret,
                    ENDPOINTS.c.previous_secret,
                    ENDPOINTS.c.previous_secret_until,
                    ENDPOINTS.c.failing_since,
                )
                .join(MESSAGES, MESSAGES.c.id == DELIVERIES.c.message_id)
                .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                .where(DELIVERIES.c.id.in_(ids))
            ).all()
        jobs = [_job(r, now) for r in details]
        if flight is not None:
            flight.add(jobs)
        return jobs

    # -- running ---------------------------------------------------------------------------
    def run_once(self, limit: int = 50) -> int:
        """Claim what is due, send it concurrently, record the batch; answers how many."""
        jobs = self.claim(limit)
        self.record(list(self.pool.map(self.attempt, jobs)))
        return len(jobs)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.2) -> None:
        """Deliver until `stop` is set: claim whenever a quarter of the pool is free, send on the
        pool, record what finished in batches; wake on NOTIFY (PostgreSQL) or poll."""
        flight = _Flight(self.concurrency)
        finished: queue.SimpleQueue[Attempted | None] = queue.SimpleQueue()
        recorder = threading.Thread(
            target=self._recorder, args=(finished, flight), name="webhook-recorder", daemon=True
        )
        recorder.start()
        listener = Listener(self.engine, self.wake) if Listener.wanted(self.engine) else None
        if listener is not None:
            listener.start(stop)
        try:
            while not stop.is_set():
                self.wake.clear()
                if flight.worth_claiming():
                    try:
                        jobs = self.claim(flight.room(), flight)
                    except SQLAlchemyError:  # the database is away for a moment: try again
                        log.exception("could not claim webhook deliveries")
                        jobs = []
                    for job in jobs:
                        self.pool.submit(self._attempt_in_flight, job, flight, finished)
                self.wake.wait(idle_sleep)
        finally:
            flight.wait_sent()
            finished.put(None)
            recorder.join()
            if listener is not None:
                listener.join()

    def attempt(self, job: Job) -> Attempted:
        """One attempt of one delivery (nothing is sent to a disabled endpoint)."""
        at = utcnow()
        return Attempted(job, self.send(job) if job.active else None, at)

    def record(self, batch: Sequence[Attempted]) -> None:
        """Log and settle a batch of attempts in one transaction."""
        if batch:
            with self.engine.begin() as conn:
                record(conn, batch, schedule=self.schedule, sender=self.sender, now=utcnow())

    def _attempt_in_flight(
        self, job: Job, flight: _Flight, finished: queue.SimpleQueue[Attempted | None]
    ) -> None:
        try:
            attempted = self.attempt(job)
        except Exception:  # a bug must not lose the thread: the lock expires, it is retried
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)
            flight.sent(job.endpoint_id, None)
            flight.recorded(1)
            self.wake.set()
            return
        if flight.sent(job.endpoint_id, attempted.outcome):
            self.wake.set()
        finished.put(attempted)

    def _recorder(self, finished: queue.SimpleQueue[Attempted | None], flight: _Flight) -> None:
        """Record what finished, as many at a time as have piled up while the last batch was
        being written."""
        done = False
        while not done:
            item = finished.get()
            batch: list[Attempted] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= RECORD_BATCH:
                    break
                try:
                    item = finished.get_nowait()
                except queue.Empty:
                    break
            done = item is None
            self._record_patiently(batch)
            flight.recorded(len(batch))
            self.wake.set()

    def _record_patiently(self, batch: list[Attempted]) -> None:
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                self.record(batch)
                return
            except SQLAlchemyError:
                log.exception("could not record %d webhook attempts (try %d)", len(batch), attempt)
                time.sleep(0.5 * attempt)
        # not recorded: their claims expire and they are attempted again (at least once)

    # -- sending ---------------------------------------------------------------------------
    def send(self, job: Job) -> Outcome:
        started = time.monotonic()
        try:
            request = self._request(job)
        except UnsafeUrl as exc:
            return Outcome(None, 0, None, f"refused: {exc}"[:500])
        try:
            response = self.client.send(request, stream=True)
            try:
                head = bytearray()
                for chunk in response.iter_bytes():  # read no more than the excerpt we keep
                    head += chunk
                    if len(head) >= EXCERPT_BYTES:
                        break
            finally:
                response.close()
        except httpx.HTTPError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return Outcome(None, elapsed, None, f"{exc.__class__.__name__}: {exc}"[:500])
        elapsed = int((time.monotonic() - started) * 1000)
        return Outcome(
            response.status_code,
            elapsed,
            bytes(head[:EXCERPT_BYTES]).decode("utf-8", "replace"),
            None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
            _retry_after(response.headers.get("retry-after")),
        )

    def _request(self, job: Job) -> httpx.Request:
        address = resolve_target(job.url, allow_private=self.settings.webhook_allow_private)
        parts = urlsplit(job.url)
        host = parts.hostname or ""
        netloc_ip = f"[{address}]" if ":" in address else address
        if parts.port is not None:
            netloc_ip += f":{parts.port}"
        target = urlunsplit((parts.scheme, netloc_ip, parts.path or "/", parts.query, ""))
        body = job.body.encode()
        headers = signature_headers(job.message_id, int(time.time()), body, job.secrets)
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": f"doorcheck-webhooks/{__version__}",
                "host": parts.netloc.rpartition("@")[2],
            }
        )
        extensions = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
        return self.client.build_request(
            "POST", target, content=body, headers=headers, extensions=extensions
        )


def _job(row: Any, now: datetime) -> Job:
    secrets: tuple[str, ...] = (row.secret,)
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
        secrets = (row.secret, row.previous_secret)
    return Job(
        row.id,
        row.attempts,
        row.message_id,
        row.body,
        row.endpoint_id,
        row.url,
        bool(row.active),
        secrets,
        row.failing_since,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(seconds, 86_400.0) if seconds >= 0 else None
