"""Downloading an event: a whole snapshot when there is no cursor, then the changes after it
(long-polling while online), each page applied in one transaction. A 410 means the cursor is
no longer served: the snapshot is downloaded again, the outbox kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from scanner_app.client import MustRefetch, ServerClient
from scanner_app.store import Store, iso
from scanner_app.store.cache import apply_events, apply_page, finish_snapshot
from scanner_app.store.events import event_cursor, forget_cursor
from scanner_app.sync_state import Health
from shared.sync import EventConfig

__all__ = ["PAGE", "Puller"]

PAGE = 5000


class Puller:
    def __init__(self, store: Store, health: Health, on_change: Callable[[], None]) -> None:
        self.store, self.health, self.on_change = store, health, on_change
        self.lock = threading.Lock()  # one page applied at a time
        self.pulls_done = 0

    def refresh_events(self, client: ServerClient) -> list[EventConfig]:
        events = client.events()
        apply_events(self.store, events)
        return events

    def pull_once(
        self,
        client: ServerClient,
        event_id: str,
        *,
        wait: int = 0,
        stop: threading.Event | None = None,
    ) -> bool:
        """Bring one event up to date. Returns True when something changed. With `wait`, the
        last page long-polls; with `stop` set by the time a page arrives, the page is dropped.
        The lock is never held across a request."""
        with self.lock:
            cursor, gen = event_cursor(self.store, event_id)
        snapshot = cursor is None
        gen += 1 if snapshot else 0
        changed = False
        self.health.state.syncing = snapshot or wait == 0  # not while merely long-polling
        try:
            while True:
                sent_at = time.time()
                try:
                    page = client.pull(event_id, cursor, limit=PAGE, wait=0 if snapshot else wait)
                except MustRefetch:
                    with self.lock:
                        self.store.set_meta(f"refetch:{event_id}", iso(datetime.now(UTC)))
                        forget_cursor(self.store, event_id)
                    cursor, snapshot, gen = None, True, gen + 1
                    continue
                if stop is not None and stop.is_set():
                    return changed
                with self.lock:
                    rows = apply_page(self.store, event_id, page, gen=gen if snapshot else 0)
                changed = changed or bool(rows) or snapshot
                cursor = page.cursor
                self.health.ok(page.server_time, sent_at=sent_at)
                if not page.has_more:
                    break
            if snapshot:
                with self.lock:
                    finish_snapshot(self.store, event_id, gen)
            self.pulls_done += 1
        finally:
            self.health.state.syncing = False
        if changed:
            self.on_change()
        return changed
