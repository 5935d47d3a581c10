"""The dispatcher loop: hands the deliveries it claims (`claims`) to the sender's event loop
(`sender.Sender`, a bounded number in flight) and records finished attempts in batches.

    Dispatcher(engine, settings).run_forever(stop)   # in the server, or in `doorcheck worker`
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from sync_server.db import utcnow
from sync_server.security import SecretBox
from sync_server.settings import Settings
from sync_server.webhooks.claims import Claimer, Flight
from sync_server.webhooks.recording import Attempted, Job, Outcome, record
from sync_server.webhooks.sender import Sender
from sync_server.webhooks.wakeup import Listener

__all__ = ["Dispatcher", "Outcome", "attempt_timeout", "parse_schedule"]

log = logging.getLogger("doorcheck.webhooks")

TIMEOUT_S = 10.0
RECORD_BATCH = 500
# after a claim or a recorded batch, let work pile up this long: under load a dispatcher writes a
# few larger transactions a second instead of one per handful of attempts
GATHER_S = 0.1
CLAIMS_PER_THREAD = 4  # deliveries claimed ahead per attempt allowed in flight
RECORD_TRIES = 3


def parse_schedule(text: str) -> list[float]:
    """`"5,300,1800"` -> `[5.0, 300.0, 1800.0]`: the waits after the 1st, 2nd, 3rd failure."""
    return [float(part) for part in text.split(",") if part.strip()]


def attempt_timeout(claim_seconds: float) -> float:
    """10 s, or half the claim lock if that is shorter: an attempt ends long before its lock
    expires, so no other dispatcher can claim a delivery that is still being sent."""
    return min(TIMEOUT_S, claim_seconds / 2)


class Dispatcher(Claimer):
    """Delivers the outbox; any number of dispatchers may share one PostgreSQL database."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        concurrency: int | None = None,
    ) -> None:
        self.engine = engine
        self.reader = engine.execution_options(sqlite_immediate=False)
        self.settings = settings
        self.box = SecretBox(settings.secret())
        self.schedule = parse_schedule(settings.webhook_retry_schedule)
        self.claim_for = timedelta(seconds=settings.webhook_claim_seconds)
        self.concurrency = concurrency or settings.webhook_concurrency
        self.sender = f"{socket.gethostname()}:{os.getpid()}"
        self.wake = threading.Event()
        self.http = Sender(
            timeout=attempt_timeout(settings.webhook_claim_seconds),
            allow_private=settings.webhook_allow_private,
            pool_size=self.concurrency,
        )

    def close(self) -> None:
        self.http.close()

    # -- running ---------------------------------------------------------------------------
    def run_once(self, limit: int = 50) -> int:
        """Claim what is due, send it concurrently, record the batch; answers how many."""
        jobs = self.claim(limit)
        at = utcnow()
        live = [job for job in jobs if job.active]
        outcomes = dict(
            zip((job.delivery_id for job in live), self.http.send_all(live), strict=True)
        )
        self.record([Attempted(job, outcomes.get(job.delivery_id), at) for job in jobs])
        return len(jobs)

    def run_forever(self, stop: threading.Event, idle_sleep: float = 0.2) -> None:
        """Deliver until `stop` is set. Each turn writes one transaction: it records the attempts
        that finished since the last turn, fans out new messages (taking as many of their
        deliveries as the flight has room for, already claimed) and claims older due ones when
        half the flight is free; the sender's loop meanwhile POSTs. Wakes on NOTIFY
        (PostgreSQL), when an endpoint at its share frees a slot, or every `idle_sleep`
        seconds."""
        flight = Flight(self.concurrency * CLAIMS_PER_THREAD, self.concurrency)
        finished: queue.SimpleQueue[Attempted] = queue.SimpleQueue()
        listener = Listener(self.engine, self.wake) if Listener.wanted(self.engine) else None
        if listener is not None:
            listener.start(stop)
        pending: list[Attempted] = []  # finished, not recorded yet
        failures = 0
        try:
            while not stop.is_set():
                self.wake.clear()
                pending += _take(finished, RECORD_BATCH - len(pending))
                room = flight.room() + len(pending)  # new deliveries are taken into any room
                limit = room if flight.worth_claiming(len(pending)) else 0  # a claim, into half
                try:
                    if not pending and not (room and self._anything_due(flight)):
                        self.wake.wait(idle_sleep)
                        continue
                    turn = self._turn(pending, room, limit, flight)
                except SQLAlchemyError:  # the database is away for a moment: try again
                    failures += 1
                    log.exception("could not reach the webhook outbox (%d)", failures)
                    if failures >= RECORD_TRIES and pending:  # their claims expire: sent again
                        flight.recorded(len(pending))
                        pending = []
                    stop.wait(min(0.5 * failures, 5.0))
                    continue
                flight.recorded(len(pending))
                pending, failures = [], 0
                jobs = turn.fresh_jobs()
                try:
                    jobs += self._jobs(turn.claimed)
                except SQLAlchemyError:  # the claims lapse and another turn sends them
                    log.exception("could not read %d claimed webhook deliveries", len(turn.claimed))
                flight.add(jobs)
                self._start(jobs, flight, finished)
                if not jobs or turn.drained:  # a trickle: let the next turn carry more
                    stop.wait(GATHER_S)
                self.wake.wait(idle_sleep)
        finally:
            flight.wait_sent()
            pending += _take(finished, None)
            self._record_patiently(pending)
            if listener is not None:
                listener.join()

    def record(self, batch: Sequence[Attempted]) -> None:
        """Log and settle a batch of attempts in one transaction."""
        if batch:
            with self.engine.begin() as conn:
                record(conn, batch, schedule=self.schedule, sender=self.sender, now=utcnow())

    def _start(
        self, jobs: Sequence[Job], flight: Flight, finished: queue.SimpleQueue[Attempted]
    ) -> None:
        """Hand `jobs` to the sender; each outcome lands in `finished` (a disabled endpoint's
        at once: nothing is sent to it)."""
        at = utcnow()

        def done(job: Job, outcome: Outcome | None) -> None:  # on the sender's loop
            if outcome is None:  # a bug, logged by the sender: the claim lapses, it is retried
                flight.sent(job.endpoint_id, None)
                flight.recorded(1)
                self.wake.set()
                return
            finished.put(Attempted(job, outcome, at))
            if flight.sent(job.endpoint_id, outcome):
                self.wake.set()

        for job in jobs:
            if not job.active:
                finished.put(Attempted(job, None, at))
                flight.sent(job.endpoint_id, None)
        self.http.submit([job for job in jobs if job.active], done)

    def _record_patiently(self, batch: list[Attempted]) -> None:
        for start in range(0, len(batch), RECORD_BATCH):
            part = batch[start : start + RECORD_BATCH]
            for attempt in range(1, RECORD_TRIES + 1):
                try:
                    self.record(part)
                    break
                except SQLAlchemyError:
                    log.exception(
                        "could not record %d webhook attempts (try %d)", len(part), attempt
                    )
                    time.sleep(0.5 * attempt)
            # not recorded: their claims expire and they are attempted again (at least once)


def _take(finished: queue.SimpleQueue[Attempted], most: int | None) -> list[Attempted]:
    """What `finished` holds now, `most` at the most (None: all)."""
    taken: list[Attempted] = []
    while most is None or len(taken) < most:
        try:
            taken.append(finished.get_nowait())
        except queue.Empty:
            break
    return taken
