"""The live parts of a window: the status bar and activity lists re-read when the gate changes
(bursts coalesced), relative times redrawn, and the camera preview streamed to the scan
screen. `DoorApp` takes these from `LiveParts`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from scanner_app.errors import GateError, Problem
from scanner_app.state import GateStats, SyncStatus
from scanner_app.ui import viewmodel as vm
from scanner_app.ui.navigation import Screen
from scanner_app.ui.views.activity import ActivityScreen
from scanner_app.ui.views.scan import ScanScreen
from scanner_app.ui.views.status import status_bar

__all__ = ["TICK_SECONDS", "LiveParts"]

log = logging.getLogger(__name__)

TICK_SECONDS = 15.0  # relative times ("synced 2 min ago") are redrawn this often


class LiveParts:
    """Mixed into the app: uses its `page`, `gate`, `session`, `frame`, `screen`, `t`..."""

    page: Any
    gate: Any
    session: Any
    frame: Any
    screen: Screen
    t: Any
    colours: Any
    options: Any
    status: SyncStatus | None
    stats: GateStats | None
    revoked: bool
    lock_mode: str
    lock_note: str  # a text key

    def screen_of(self, kind: Any) -> Any: ...

    async def show(self, screen: Screen) -> None: ...

    async def read_status(self) -> None:
        def read() -> tuple[SyncStatus, GateStats | None]:
            status = self.gate.status()
            return status, self.gate.stats() if self.gate.config is not None else None

        self.status, self.stats = await asyncio.to_thread(read)

    def draw_status(self, *, syncing: bool = False) -> None:
        if self.status is None:
            return
        look = vm.status_look(self.status, self.stats, datetime.now(UTC), self.t, syncing=syncing)
        self.frame.show_status(status_bar(look, self.colours, self.t))

    async def refresh(self) -> None:
        """Re-read status (and the activity lists when shown); coalesces bursts of changes."""
        session = self.session
        if session.refreshing:
            session.refresh_again = True
            return
        session.refreshing = True
        try:
            while True:
                session.refresh_again = False
                if self.screen is Screen.LOCK:
                    break
                try:
                    await self.read_status()
                except GateError as exc:  # erased, and the new key needs a PIN
                    if exc.code not in (Problem.LOCKED, Problem.PIN_REQUIRED):
                        raise
                    await self._locked_again()
                    break
                assert self.status is not None
                if (self.status.revoked or self.status.wiped) and not self.revoked:
                    self.revoked = True
                    await self.show(Screen.PAIR)
                elif self.status.pin_wanted:
                    self.lock_mode = "set"
                    await self.show(Screen.LOCK)
                self.draw_status()
                if self.screen is Screen.ACTIVITY:
                    await self._load_activity()
                if not session.refresh_again or session.closed:
                    break
        finally:
            session.refreshing = False
        if not session.closed:
            self.page.update()

    async def _locked_again(self) -> None:
        """The gate was erased under this window (wiped, revoked) and its next key needs a PIN."""
        self.lock_mode = await asyncio.to_thread(lambda: self.gate.keys.locked) or "choose"
        notice = await asyncio.to_thread(lambda: self.gate.keys.notice)
        self.lock_note = f"pair.wiped.{notice.reason.value}" if notice else ""
        await self.show(Screen.LOCK)

    async def _load_activity(self) -> None:
        screen = self.screen_of(ActivityScreen)
        if screen is None or self.status is None:
            return
        recent, outbox = await asyncio.to_thread(
            lambda: (self.gate.recent(50), self.gate.outbox(100))
        )
        now = datetime.now(UTC)
        look = vm.status_look(self.status, self.stats, now, self.t)
        screen.show(self.status, look, recent, outbox, now)

    # -- loops -----------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while not self.session.closed:
            await asyncio.sleep(TICK_SECONDS)
            if not self.session.closed:
                await self.refresh()

    async def _preview_loop(self) -> None:
        """Stream the camera into the scan screen; `render_encoded` paces it to the display."""
        camera = self.options.camera
        assert camera is not None
        shown = -1
        while not self.session.closed:
            scan = self.screen_of(ScanScreen)
            if self.screen is not Screen.SCAN or scan is None or camera.frame_seq == shown:
                await asyncio.sleep(0.02)
                continue
            seq, jpeg = await asyncio.to_thread(camera.jpeg)
            if jpeg is None or seq == shown:
                await asyncio.sleep(0.02)
                continue
            shown = seq
            try:
                await scan.preview.render_encoded(jpeg)
            except (TimeoutError, RuntimeError) as exc:  # tab hidden or gone, or rebuilt
                log.debug("preview frame dropped: %s", exc)
                await asyncio.sleep(0.5)
