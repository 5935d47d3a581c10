"""How the gate's sync is going, as the screens show it: online or offline since when, the last
sync, the last problem (a code and a sentence), the device clock's offset from the server's,
and whether the device was revoked (then it erases its data and sync stops).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from scanner_app.client import SyncError
from scanner_app.errors import Problem
from scanner_app.store import Store, iso, parse_iso

__all__ = ["BACKOFF_MAX_S", "BACKOFF_MIN_S", "PROBE_MAX_S", "Health", "SyncState"]

log = logging.getLogger("doorcheck.scanner.sync")

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
# A server that cannot be reached costs nothing to try again: the gate tries at most this long
# apart (with jitter, under 2 s), so it is back online within 2 s of the server answering
# again (SPEC section 11). A server that answers with an error is backed off up to BACKOFF_MAX_S.
PROBE_MAX_S = 1.3


@dataclass
class SyncState:
    online: bool = False
    offline_since: datetime | None = None
    last_sync: datetime | None = None
    last_error: str | None = None
    problem: Problem | None = None
    revoked: bool = False
    clock_offset_ms: int | None = None
    syncing: bool = False
    failures: int = 0


class Health:
    """Keeps `state` from what each exchange with the server answered; `on_change` is called
    when something a screen shows changed."""

    def __init__(self, store: Store, on_change: Callable[[], None]) -> None:
        self.store, self.on_change = store, on_change
        offset = store.get_meta("clock_offset_ms")
        self.state = SyncState(
            last_sync=parse_iso(store.get_meta("last_sync")),
            revoked=store.get_meta("revoked") == "1",
            clock_offset_ms=int(offset) if offset else None,
        )

    def ok(self, server_time: datetime | None = None, *, sent_at: float | None = None) -> None:
        state = self.state
        changed = not state.online or state.last_error is not None
        state.online, state.offline_since, state.failures = True, None, 0
        state.last_error = state.problem = None
        now = datetime.now(UTC)
        state.last_sync = now
        if server_time is not None and sent_at is not None:
            midpoint = (sent_at + time.time()) / 2
            state.clock_offset_ms = int((midpoint - server_time.timestamp()) * 1000)
            self.store.set_meta("clock_offset_ms", str(state.clock_offset_ms))
        self.store.set_meta("last_sync", iso(now))
        if changed:
            self.on_change()

    def failed(self, error: SyncError) -> float:
        """Record a failure; returns how long to back off."""
        state = self.state
        if state.online or state.offline_since is None:
            state.offline_since = datetime.now(UTC)
        state.online = False
        state.failures += 1
        state.last_error, state.problem = str(error), error.code
        log.info("sync: %s", error)
        self.on_change()
        ceiling = PROBE_MAX_S if error.code is Problem.UNREACHABLE else BACKOFF_MAX_S
        base = min(ceiling, BACKOFF_MIN_S * 2 ** min(state.failures - 1, 10))
        return base * random.uniform(0.5, 1.5)

    def revoked(self, error: SyncError) -> None:
        """The server no longer serves this device (the gate erases its data next)."""
        log.warning("device revoked or wiped: %s", error)
        state = self.state
        state.revoked, state.online = True, False
        state.last_error, state.problem = str(error), error.code
        self.on_change()

    def reset(self) -> None:
        """A freshly paired device: nothing went wrong yet."""
        self.state.revoked = False
        self.state.last_error = self.state.problem = None
