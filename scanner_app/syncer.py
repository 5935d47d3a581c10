"""The gate's background sync: push the outbox, pull the event, and say clearly how it went.

Two daemon threads share one `ServerClient`:

- the **pusher** sends pending registrations and readings in batches as soon as there are any
  (woken by the gate), marks what the server answered and retries the rest with exponential
  backoff and jitter while the server is unreachable;
- the **puller** downloads the event (a full snapshot without a cursor, then changes after it,
  long-polling while online) and applies each page in one transaction.

A 401 means the device was revoked: the attendee cache is wiped and both loops stop. A 410 on
pull means the cursor is no longer served: the snapshot is downloaded again, the outbox kept.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanner_app.cache import apply_events, apply_page, finish_snapshot, mark_reflected
from scanner_app.client import MustRefetch, Revoked, ServerClient, ServerRefused, SyncError
from scanner_app.store import Store, iso, parse_iso

__all__ = ["BATCH", "SyncState", "Syncer"]

log = logging.getLogger("doorcheck.scanner.sync")

BATCH = 1000
LONG_POLL_S = 25
PAGE = 5000
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass
class SyncState:
    online: bool = False
    offline_since: datetime | None = None
    last_sync: datetime | None = None
    last_error: str | None = None
    revoked: bool = False
    clock_offset_ms: int | None = None
    syncing: bool = False
    failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _scan_item(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "checkpoint_id": row["checkpoint_id"],
        "code": row["code"],
        "direction": row["direction"],
        "scanned_at": row["scanned_at"],
        "hlc": row["hlc"],
        "device_verdict": {"status": row["status"], "reason": row["reason"]},
        "operator": row["operator"] or None,
        "manual": bool(row["manual"]),
    }


def _registration_item(row: Any) -> dict[str, Any]:
    import json

    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "ticket_type": row["ticket_type"],
        "tags": json.loads(row["tags"]),
        "created_at": row["created_at"],
        "hlc": row["hlc"],
    }


class Syncer:
    def __init__(
        self,
        store: Store,
        client: Callable[[], ServerClient | None],
        event_ids: Callable[[], list[str]],
        on_change: Callable[[], None] = lambda: None,
        *,
        long_poll_s: int = LONG_POLL_S,
    ) -> None:
        self.store = store
        self._client = client
        self._event_ids = event_ids
        self._on_change = on_change
        self.long_poll_s = long_poll_s
        self.state = SyncState(
            last_sync=parse_iso(store.get_meta("last_sync")),
            revoked=store.get_meta("revoked") == "1",
        )
        offset = store.get_meta("clock_offset_ms")
        self.state.clock_offset_ms = int(offset) if offset else None
        self._stop = threading.Event()
        self._push_wake = threading.Event()
        self._pull_wake = threading.Event()
        self._push_lock = threading.Lock()
        self._pull_lock = threading.Lock()  # one page applied at a time
        self.pulls_done = 0
        self._threads: list[threading.Thread] = []
        self._batch = BATCH

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads or self.state.revoked:
            return
        stop = self._stop = threading.Event()  # each run has its own flag
        for name, target in (("push", self._push_loop), ("pull", self._pull_loop)):
            thread = threading.Thread(
                target=target, args=(stop,), name=f"doorcheck-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop both loops. A long-poll in flight is not waited for: when it returns, its
        thread sees its run was stopped, drops the page and ends."""
        self._stop.set()
        self._push_wake.set()
        self._pull_wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def wake(self) -> None:
        """Something entered the outbox: push it now."""
        self._push_wake.set()

    # -- status ------------------------------------------------------------------------------
    def _ok(self, server_time: str | None = None, *, sent_at: float | None = None) -> None:
        state = self.state
        changed = not state.online or state.last_error is not None
        state.online, state.offline_since, state.last_error, state.failures = True, None, None, 0
        now = datetime.now(UTC)
        state.last_sync = now
        if server_time and sent_at is not None:
            server = parse_iso(server_time)
            if server is not None:
                midpoint = (sent_at + time.time()) / 2
                state.clock_offset_ms = int((midpoint - server.timestamp()) * 1000)
                self.store.set_meta("clock_offset_ms", str(state.clock_offset_ms))
        self.store.set_meta("last_sync", iso(now))
        if changed:
            self._on_change()

    def _failed(self, error: SyncError) -> float:
        """Record a failure; returns how long to back off."""
        state = self.state
        if state.online or state.offline_since is None:
            state.offline_since = datetime.now(UTC)
        state.online = False
        state.failures += 1
        state.last_error = str(error)
        log.info("sync: %s", error)
        self._on_change()
        base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(state.failures - 1, 10))
        return base * random.uniform(0.5, 1.5)

    def _revoked(self, error: Revoked) -> None:
        log.warning("device revoked: %s", error)
        self.store.wipe_attendee_data()
        self.store.set_meta("revoked", "1")
        self.state.revoked = True
        self.state.online = False
        self.state.last_error = str(error)
        self._stop.set()
        self._push_wake.set()
        self._pull_wake.set()
        self._on_change()

    # -- push --------------------------------------------------------------------------------
    def pending_count(self) -> int:
        row = self.store.one(
            "SELECT (SELECT count(*) FROM readings WHERE state = 'pending')"
            " + (SELECT count(*) FROM registrations WHERE state = 'pending')"
        )
        return int(row[0]) if row else 0

    def push_once(self, client: ServerClient) -> int:
        """Send one batch of the outbox; returns how many items the server settled."""
        with self._push_lock:
            regs = self.store.query(
                "SELECT * FROM registrations WHERE state = 'pending' ORDER BY seq LIMIT ?",
                (self._batch,),
            )
            scans = self.store.query(
                "SELECT * FROM readings WHERE state = 'pending' ORDER BY seq LIMIT ?",
                (max(self._batch - len(regs), 0),),
            )
            if not regs and not scans:
                return 0
            sent_at = time.time()
            try:
                answer = client.push(
                    iso(datetime.now(UTC)) or "",
                    [_scan_item(r) for r in scans],
                    [_registration_item(r) for r in regs],
                )
            except ServerRefused as exc:
                if exc.status == 413 and self._batch > 10:
                    self._batch //= 2
                self._note_attempt(regs, scans, str(exc))
                raise
            except SyncError as exc:
                self._note_attempt(regs, scans, str(exc))
                raise
            settled = self._settle(answer.get("results") or [])
            self._ok(answer.get("server_time"), sent_at=sent_at)
            return settled

    def _note_attempt(self, regs: list[Any], scans: list[Any], error: str) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE registrations SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [(error, r["id"]) for r in regs],
            )
            conn.executemany(
                "UPDATE readings SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [(error, r["id"]) for r in scans],
            )

    def _settle(self, results: list[dict[str, Any]]) -> int:
        settled = 0
        with self.store.transaction() as conn:
            ack = self.store.next_ack()
            for result in results:
                item_id, status = result.get("id"), result.get("status")
                if status not in ("applied", "duplicate", "rejected") or not item_id:
                    continue
                verdict = result.get("server_verdict") or {}
                cur = conn.execute(
                    "UPDATE readings SET state = ?, acked_at = ?, attempts = attempts + 1,"
                    " server_status = ?, server_reason = ?, conflict_id = ?, last_error = ?"
                    " WHERE id = ? AND state = 'pending'",
                    (
                        status,
                        ack,
                        verdict.get("status"),
                        verdict.get("reason"),
                        result.get("conflict_id"),
                        result.get("error"),
                        item_id,
                    ),
                )
                if cur.rowcount == 0:
                    cur = conn.execute(
                        "UPDATE registrations SET state = ?, attempts = attempts + 1,"
                        " conflict_id = ?, last_error = ? WHERE id = ? AND state = 'pending'",
                        (status, result.get("conflict_id"), result.get("error"), item_id),
                    )
                settled += cur.rowcount
        if settled:
            self._on_change()
        return settled

    def _push_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            client = self._client()
            if client is None:
                self._push_wake.wait(1.0)
                self._push_wake.clear()
                continue
            try:
                if self.push_once(client) == 0:
                    self._push_wake.wait(5.0)
                    self._push_wake.clear()
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                stop.wait(self._failed(exc))
            except Exception:  # never let the loop die: the outbox must keep draining
                if stop.is_set():
                    return
                log.exception("push loop error")
                stop.wait(5.0)

    # -- pull --------------------------------------------------------------------------------
    def pull_once(
        self,
        client: ServerClient,
        event_id: str,
        *,
        wait: int = 0,
        stop: threading.Event | None = None,
    ) -> bool:
        """Bring one event up to date (a whole snapshot when there is no cursor).

        Returns True when something changed. With `wait`, the last page long-polls; with `stop`
        set by the time a page arrives, the page is dropped.
        """
        with self._pull_lock:
            row = self.store.one(
                "SELECT cursor, snapshot_gen FROM events WHERE id = ?", (event_id,)
            )
            cursor = row["cursor"] if row else None
            gen = (row["snapshot_gen"] if row else 0) + (1 if cursor is None else 0)
            snapshot = cursor is None
            acked_before = self.store.ack_counter
            changed = False
            self.state.syncing = snapshot or wait == 0  # not while merely long-polling
            try:
                while True:
                    sent_at = time.time()
                    self._pull_lock.release()  # never hold the lock across a long-poll
                    try:
                        page = client.pull(
                            event_id, cursor, limit=PAGE, wait=0 if snapshot else wait
                        )
                    except MustRefetch:
                        self._pull_lock.acquire()
                        self.store.set_meta(f"refetch:{event_id}", iso(datetime.now(UTC)))
                        with self.store.transaction() as conn:
                            conn.execute(
                                "UPDATE events SET cursor = NULL WHERE id = ?", (event_id,)
                            )
                        cursor, snapshot = None, True
                        gen += 1
                        acked_before = self.store.ack_counter
                        continue
                    except BaseException:
                        self._pull_lock.acquire()
                        raise
                    self._pull_lock.acquire()
                    if stop is not None and stop.is_set():
                        return changed
                    rows = apply_page(self.store, event_id, page, gen=gen if snapshot else 0)
                    changed = changed or bool(rows) or snapshot
                    cursor = page["cursor"]
                    self._ok(page.get("server_time"), sent_at=sent_at)
                    if not page.get("has_more"):
                        break
                if snapshot:
                    finish_snapshot(self.store, event_id, gen)
                mark_reflected(self.store, event_id, acked_before)
                self.pulls_done += 1
            finally:
                self.state.syncing = False
        if changed:
            self._on_change()
        # A push answered while this pull was in flight may not be in what we got:
        # look again at once (without waiting) so it is reflected exactly once.
        if self.store.ack_counter != acked_before and wait:
            return self.pull_once(client, event_id, wait=0, stop=stop) or changed
        return changed

    def refresh_events(self, client: ServerClient) -> list[dict[str, Any]]:
        events = client.events()
        apply_events(self.store, events)
        return events

    def _pull_loop(self, stop: threading.Event) -> None:
        refreshed = False
        while not stop.is_set():
            client = self._client()
            event_ids = self._event_ids()
            if client is None or not event_ids:
                self._pull_wake.wait(1.0)
                self._pull_wake.clear()
                continue
            try:
                if not refreshed:
                    self.refresh_events(client)
                    refreshed = True
                wait = self.long_poll_s if len(event_ids) == 1 else 0
                for event_id in event_ids:
                    self.pull_once(client, event_id, wait=wait, stop=stop)
                if len(event_ids) > 1:
                    self._pull_wake.wait(2.0)
                    self._pull_wake.clear()
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                refreshed = False
                if stop.is_set():
                    return
                stop.wait(self._failed(exc))
            except Exception:
                if stop.is_set():
                    return
                log.exception("pull loop error")
                stop.wait(5.0)

    # -- one-shot (the CLI, "sync now") -------------------------------------------------------
    def sync_now(self, timeout: float = 30.0) -> bool:
        """Push everything pending, then pull every event to its head. True on full success."""
        client = self._client()
        if client is None or self.state.revoked:
            return False
        deadline = time.monotonic() + timeout
        if self.running:  # the pusher uploads; this thread pulls once without waiting
            self._push_wake.set()
            while self.pending_count() and time.monotonic() < deadline:
                if self.state.revoked or (not self.state.online and self.state.failures):
                    break
                time.sleep(0.05)
            try:
                for event_id in self._event_ids():
                    self.pull_once(client, event_id, wait=0)
            except Revoked as exc:
                self._revoked(exc)
                return False
            except SyncError as exc:
                self._failed(exc)
                return False
            return self.pending_count() == 0
        try:
            while self.pending_count() and time.monotonic() < deadline:
                if self.push_once(client) == 0:
                    break
            self.refresh_events(client)
            for event_id in self._event_ids():
                self.pull_once(client, event_id, wait=0)
            return self.pending_count() == 0
        except Revoked as exc:
            self._revoked(exc)
        except SyncError as exc:
            self._failed(exc)
        return False

    def drain(self, timeout: float) -> int:
        """Try to upload the outbox for up to `timeout` seconds; returns what is still pending."""
        deadline = time.monotonic() + timeout
        client = self._client()
        while client is not None and not self.state.revoked and time.monotonic() < deadline:
            if self.pending_count() == 0:
                break
            try:
                self.push_once(client)
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                pause = min(self._failed(exc), max(deadline - time.monotonic(), 0))
                time.sleep(pause)
        return self.pending_count()
