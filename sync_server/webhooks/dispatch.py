"""The dispatcher: claims due deliveries from the outbox in short transactions, POSTs each signed
message to the address the SSRF guard checked, logs the attempt and schedules the next one.

    Dispatcher(engine, settings).run_forever(stop)   # in the server, or in `doorcheck worker`
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import Engine, Table, and_, insert, or_, select, update

from shared.webhooks import signature_headers
from sync_server import __version__
from sync_server.db import is_sqlite, utcnow
from sync_server.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from sync_server.models.base import new_id
from sync_server.settings import Settings
from sync_server.webhooks.ssrf import UnsafeUrl, resolve_target

__all__ = ["Dispatcher", "Outcome", "parse_schedule"]

log = logging.getLogger("doorcheck.webhooks")

ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
MESSAGES: Table = WebhookMessage.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
ATTEMPTS: Table = WebhookAttempt.__table__  # type: ignore[assignment]

TIMEOUT_S = 10.0
LOCK_FOR = timedelta(seconds=60)
DISABLE_AFTER = timedelta(days=5)
EXCERPT_BYTES = 2048
DUE_STATES = ("pending", "retrying")


def parse_schedule(text: str) -> list[float]:
    """`"5,300,1800"` -> `[5.0, 300.0, 1800.0]`: the waits after the 1st, 2nd, 3rd failure."""
    return [float(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class _Job:
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
    """What one attempt came to (a value; `_record` applies it)."""

    status_code: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    """Delivers the outbox; any number of dispatchers may share one PostgreSQL database."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 8,
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_immediate=False)
        self.settings = settings
        self.schedule = parse_schedule(settings.webhook_retry_schedule)
        self.concurrency = concurrency
        self.client = httpx.Client(
            transport=transport,
            timeout=TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=max(concurrency * 2, 10)),
        )
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    # -- claiming --------------------------------------------------------------------------
    def claim(self, limit: int) -> list[_Job]:
        """Lock up to `limit` due deliveries for a minute, in one short transaction."""
        now = utcnow()
        due = and_(
            DELIVERIES.c.state.in_(DUE_STATES),
            DELIVERIES.c.next_attempt_at <= now,
            or_(DELIVERIES.c.locked_until.is_(None), DELIVERIES.c.locked_until < now),
        )
        pick = select(DELIVERIES.c.id).where(due).order_by(DELIVERIES.c.next_attempt_at)
        with self.reader.connect() as conn:  # idle polls take no write lock
            if conn.execute(pick.limit(1)).first() is None:
                return []
        with self.engine.begin() as conn:
            if is_sqlite(self.engine):  # BEGIN IMMEDIATE already serializes writers
                ids = [
                    r.id
                    for r in conn.execute(
                        update(DELIVERIES)
                        .where(DELIVERIES.c.id.in_(pick.limit(limit).scalar_subquery()))
                        .values(locked_until=now + LOCK_FOR)
                        .returning(DELIVERIES.c.id)
                    )
                ]
            else:
                ids = list(
                    conn.execute(pick.limit(limit).with_for_update(skip_locked=True)).scalars()
                )
                if ids:
                    conn.execute(
                        update(DELIVERIES)
                        .where(DELIVERIES.c.id.in_(ids))
                        .values(locked_until=now + LOCK_FOR)
                    )
            if not ids:
                return []
            rows = conn.execute(
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
        return [_job(r, now) for r in rows]

    # -- running ---------------------------------------------------------------------------
    def run_once(self, limit: int = 50) -> int:
        """Claim what is due and deliver it concurrently; answers how many were attempted."""
        jobs = self.claim(limit)
        for future in [self.pool.submit(self.deliver, job) for job in jobs]:
            future.result()
        return len(jobs)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.2) -> None:
        """Keep every worker thread busy until `stop` is set: a slow endpoint holds one thread,
        never the others."""
        in_flight: set[Future[None]] = set()
        lock = threading.Lock()

        def done(future: Future[None]) -> None:
            with lock:
                in_flight.discard(future)

        while not stop.is_set():
            with lock:
                free = self.concurrency - len(in_flight)
            jobs: list[_Job] = []
            if free > 0:
                try:
                    jobs = self.claim(free)
                except Exception:  # the database is away for a moment: try again shortly
                    log.exception("could not claim webhook deliveries")
            for job in jobs:
                future = self.pool.submit(self.deliver, job)
                with lock:
                    in_flight.add(future)
                future.add_done_callback(done)
            if not jobs:
                stop.wait(idle_sleep)
        with lock:
            pending = list(in_flight)
        for future in pending:
            future.result()

    def deliver(self, job: _Job) -> None:
        """One attempt of one delivery, recorded whatever happens."""
        try:
            if not job.active:
                self._finish_inactive(job)
                return
            outcome = self.send(job)
            self._record(job, outcome)
        except Exception:  # never lose the worker thread; the lock expires and it is retried
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)

    # -- sending ---------------------------------------------------------------------------
    def send(self, job: _Job) -> Outcome:
        started = time.monotonic()
        try:
            request = self._request(job)
        except UnsafeUrl as exc:
            return Outcome(None, 0, None, f"refused: {exc}"[:500])
        try:
            response = self.client.send(request)
        except httpx.HTTPError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return Outcome(None, elapsed, None, f"{exc.__class__.__name__}: {exc}"[:500])
        elapsed = int((time.monotonic() - started) * 1000)
        excerpt = response.content[:EXCERPT_BYTES].decode("utf-8", "replace")
        return Outcome(
            response.status_code,
            elapsed,
            excerpt,
            None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
            _retry_after(response.headers.get("retry-after")),
        )

    def _request(self, job: _Job) -> httpx.Request:
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

    # -- recording -------------------------------------------------------------------------
    def _record(self, job: _Job, outcome: Outcome) -> None:
        now = utcnow()
        attempts = job.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "updated_at": now,
        }
        endpoint: dict[str, Any] = {}
        if outcome.ok:
            values.update(state="succeeded", next_attempt_at=None)
            if job.failing_since is not None:
                endpoint = {"failing_since": None}
        elif outcome.status_code == 410:
            values.update(state="failed", next_attempt_at=None)
            endpoint = {"active": False, "disabled_reason": "the receiver answered 410 Gone"}
        else:
            values.update(self._next(attempts, outcome, now))
            if job.failing_since is None:
                endpoint = {"failing_since": now}
            elif now - job.failing_since > DISABLE_AFTER:
                endpoint = {
                    "active": False,
                    "disabled_reason": "every delivery failed for 5 days "
                    f"(since {job.failing_since.isoformat()})",
                }
        with self.engine.begin() as conn:
            conn.execute(
                insert(ATTEMPTS).values(
                    id=new_id("wat"),
                    delivery_id=job.delivery_id,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    duration_ms=outcome.duration_ms,
                    response_excerpt=outcome.excerpt,
                    error=outcome.error,
                    details={"attempt": attempts},
                )
            )
            conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.id == job.delivery_id).values(**values)
            )
            if endpoint:
                conn.execute(
                    update(ENDPOINTS)
                    .where(ENDPOINTS.c.id == job.endpoint_id)
                    .values(**endpoint, updated_at=now)
                )

    def _next(self, attempts: int, outcome: Outcome, now: datetime) -> dict[str, Any]:
        if attempts > len(self.schedule):
            return {"state": "failed", "next_attempt_at": None}
        wait = self.schedule[attempts - 1] * random.uniform(0.9, 1.1)
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        return {"state": "retrying", "next_attempt_at": now + timedelta(seconds=wait)}

    def _finish_inactive(self, job: _Job) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == job.delivery_id)
                .values(
                    state="failed",
                    locked_until=None,
                    next_attempt_at=None,
                    last_error="the endpoint is disabled",
                    updated_at=now,
                )
            )


def _job(row: Any, now: datetime) -> _Job:
    secrets: tuple[str, ...] = (row.secret,)
    if row.previous_secret and row.previous_secret_until and row.previous_secret_until > now:
        secrets = (row.secret, row.previous_secret)
    return _Job(
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
