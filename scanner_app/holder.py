"""What an open gate works with (`Parts`: the store and the modules built on it), opened when
the data key is at hand and dropped when the gate is erased; and the events whose retention
passed, erased in place (`scanner_app.retention`).

`Holder(custody, build, on_change)` builds the parts on first use; while the key needs a door
PIN every use raises `GateError(LOCKED | PIN_REQUIRED)`. A gate shows it as `gate.keys`: what
the app asks of the key (`locked`, `unlock`, `pin_wanted`, `set_pin`, `notice`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from scanner_app import retention
from scanner_app.custody import Custody, WipeNotice
from scanner_app.pairing import report_wipe
from scanner_app.pipeline import ScanPipeline
from scanner_app.search import Directory
from scanner_app.store import Store
from scanner_app.store.readings import pending_count
from scanner_app.syncer import Syncer
from shared.sync import WipeReason

__all__ = ["Holder", "Parts"]

log = logging.getLogger("doorcheck.scanner")


@dataclass(frozen=True)
class Parts:
    store: Store
    syncer: Syncer
    pipeline: ScanPipeline
    directory: Directory


class Holder:
    def __init__(
        self,
        custody: Custody,
        build: Callable[[Store], Parts],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.custody = custody
        self.build = build
        self.on_change = on_change
        self._parts: Parts | None = None
        self._lock = threading.RLock()
        self.opened: list[Callable[[], None]] = []  # called after the parts are (re)built

    @property
    def is_open(self) -> bool:
        return self._parts is not None

    def parts(self) -> Parts:
        parts = self._parts
        if parts is not None:
            return parts
        with self._lock:
            if self._parts is None:
                self._parts = self.build(self.custody.open())
                for callback in self.opened:
                    callback()
            return self._parts

    @property
    def locked(self) -> str | None:
        """`"enter"` (type the door PIN), `"choose"` (no secure storage here: choose a PIN), or
        None (open)."""
        return None if self._parts is not None else self.custody.need

    def unlock(self, pin: str) -> None:
        """Open a locked gate with its door PIN (raises `PinWrong` with the tries left; the
        tenth wrong PIN erases the gate)."""
        with self._lock:
            self.custody.unlock(pin)
            self.parts()
        self.on_change()

    def set_pin(self, pin: str) -> None:
        """Put the key under a door PIN: it is asked for at every start from now on."""
        self.parts()
        self.custody.set_pin(pin)
        self.on_change()

    @property
    def notice(self) -> WipeNotice | None:
        """Why and when the gate's data was erased, until it is paired again."""
        return self.custody.notice

    @property
    def pin_wanted(self) -> bool:
        """A cached event asks for a door PIN and the key is not under one yet."""
        parts = self._parts
        if parts is None or self.custody.protected_by_pin:
            return False
        return any(e.require_device_pin for e in retention.settings(parts.store).values())

    def close(self) -> None:
        with self._lock:
            if self._parts is not None:
                self._parts.syncer.stop()
            self.custody.close()
            self._parts = None

    def erase(self, reason: WipeReason, transport: httpx.BaseTransport | None = None) -> WipeNotice:
        """Erase the queue, the cache, the credentials and the key; then tell the server (best
        effort) how many queued items went with it."""
        with self._lock:
            parts, url, token, pending = self._parts, None, None, 0
            if parts is not None:
                with contextlib.suppress(Exception):  # a damaged store is erased all the same
                    pending = pending_count(parts.store)
                    url = parts.store.get_meta("server_url")
                    token = parts.store.get_secret("device_token")
                parts.syncer.stop()
            self._parts = None
            notice = self.custody.erase(reason, pending)
        if url and token:
            report_wipe(url, token, reason, pending, transport=transport)
        return notice

    def expire_due(self, now: datetime, upload: Callable[[], None]) -> bool:
        """Erase the attendees of events past their retention, after `upload` tried to send
        what is queued. True when something was erased."""
        store = self.parts().store
        due = retention.due_events(store, now)
        if not due:
            return False
        upload()
        for event_id in due:
            retention.expire(store, event_id, now)
            log.warning("event %s: attendee data erased, past its retention", event_id)
        return True
