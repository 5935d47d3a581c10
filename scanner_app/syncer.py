"""The gate's background sync: push the outbox, pull the event, and say clearly how it went.

Two daemon threads share one `ServerClient`: the **pusher** sends pending items as soon as there
are any (woken by the gate) and retries with exponential backoff and jitter while the server is
unreachable; the **puller** downloads the event and long-polls for changes while online, and
refreshes the event list now and then while it has no event to pull (a renewed retention comes
that way). A 401 (revoked) or a 410 `device_wiped` stops both loops and calls `on_lost`: the
gate erases its data.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from scanner_app.client import Revoked, ServerClient, SyncError
from scanner_app.puller import Puller
from scanner_app.pusher import Pusher
from scanner_app.store import Store
from scanner_app.store.readings import pending_count
from scanner_app.sync_state import Health, SyncState

__all__ = ["LONG_POLL_S", "Syncer"]

log = logging.getLogger("doorcheck.scanner.sync")

LONG_POLL_S = 25
IDLE_REFRESH_S = 60.0


class Syncer:
    def __init__(
        self,
        store: Store,
        client: Callable[[], ServerClient | None],
        event_ids: Callable[[], list[str]],
        on_change: Callable[[], None] = lambda: None,
        *,
        long_poll_s: int = LONG_POLL_S,
        on_lost: Callable[[Revoked], None] = lambda error: None,
    ) -> None:
        self.store = store
        self.on_lost = on_lost
        self._client = client
        self._event_ids = event_ids
        self.long_poll_s = long_poll_s
        self.health = Health(store, on_change)
        self.pusher = Pusher(store, self.health, on_change)
        self.puller = Puller(store, self.health, on_change)
        self._stop = threading.Event()
        self._push_wake = threading.Event()
        self._pull_wake = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def state(self) -> SyncState:
        return self.health.state

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
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._threads = []

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def wake(self) -> None:
        """Something entered the outbox: push it now."""
        self._push_wake.set()

    def wake_puller(self) -> None:
        """The configuration changed: pull what it needs now."""
        self._pull_wake.set()

    def pending_count(self) -> int:
        return pending_count(self.store)

    def push_once(self, client: ServerClient) -> int:
        """Send one batch of the outbox now; answers how many items the server settled."""
        return self.pusher.push_once(client)

    def _revoked(self, error: Revoked) -> None:
        self.health.revoked(error)
        self._stop.set()
        self._push_wake.set()
        self._pull_wake.set()
        self.on_lost(error)

    # -- loops -------------------------------------------------------------------------------
    def _push_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            client = self._client()
            if client is None:
                self._push_wake.wait(1.0)
                self._push_wake.clear()
                continue
            try:
                if self.pusher.push_once(client) == 0:
                    self._push_wake.wait(5.0)
                    self._push_wake.clear()
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                stop.wait(self.health.failed(exc))
            except Exception:  # never let the loop die: the outbox must keep draining
                if stop.is_set():
                    return
                log.exception("push loop error")
                stop.wait(5.0)

    def _pull_loop(self, stop: threading.Event) -> None:
        refreshed, idle_since = False, time.monotonic()
        while not stop.is_set():
            client = self._client()
            event_ids = self._event_ids()
            if client is None or not event_ids:
                if client is not None and time.monotonic() - idle_since > IDLE_REFRESH_S:
                    idle_since = time.monotonic()
                    refreshed = False
                    with contextlib.suppress(SyncError):
                        self.puller.refresh_events(client)
                self._pull_wake.wait(1.0)
                self._pull_wake.clear()
                continue
            try:
                if not refreshed:
                    self.puller.refresh_events(client)
                    refreshed = True
                # a long poll answers only when something changes: after an outage, a pull that
                # answers at once says first that the server is back (online within 2 s)
                online = self.health.state.online
                wait = self.long_poll_s if len(event_ids) == 1 and online else 0
                for event_id in event_ids:
                    self.puller.pull_once(client, event_id, wait=wait, stop=stop)
                if len(event_ids) > 1:
                    self._pull_wake.wait(2.0)
                    self._pull_wake.clear()
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                refreshed = False
                if stop.is_set():
                    return
                stop.wait(self.health.failed(exc))
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
        try:
            if self.running:  # the pusher uploads; this thread pulls once without waiting
                self._push_wake.set()
                while self.pending_count() and time.monotonic() < deadline:
                    if self.state.revoked or (not self.state.online and self.state.failures):
                        break
                    time.sleep(0.05)
            else:
                while self.pending_count() and time.monotonic() < deadline:
                    if self.pusher.push_once(client) == 0:
                        break
                self.puller.refresh_events(client)
            for event_id in self._event_ids():
                self.puller.pull_once(client, event_id, wait=0)
            return self.pending_count() == 0
        except Revoked as exc:
            self._revoked(exc)
        except SyncError as exc:
            self.health.failed(exc)
        return False

    def drain(self, timeout: float) -> int:
        """Try to upload the outbox for up to `timeout` seconds; returns what is still pending."""
        deadline = time.monotonic() + timeout
        client = self._client()
        while client is not None and not self.state.revoked and time.monotonic() < deadline:
            if self.pending_count() == 0:
                break
            try:
                self.pusher.push_once(client)
            except Revoked as exc:
                self._revoked(exc)
            except SyncError as exc:
                pause = min(self.health.failed(exc), max(deadline - time.monotonic(), 0))
                time.sleep(pause)
        return self.pending_count()
