"""The scanner app: one `DoorApp` per window shows the screens over a `Gate`.

Gate calls run off the UI loop (`scanner_app.ui.handlers`); the gate's change notifications and
the camera arrive from other threads through `page.run_task`. `run()` starts the whole app:
`run(Gate.open(path), web=True, port=8550)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import flet as ft

from scanner_app.state import (
    CameraListener,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    SyncStatus,
)
from scanner_app.trace import heartbeat, trace, tracing
from scanner_app.ui import forms
from scanner_app.ui import navigation as nav
from scanner_app.ui import viewmodel as vm
from scanner_app.ui.handlers import GateActions
from scanner_app.ui.i18n import texts
from scanner_app.ui.live import LiveParts
from scanner_app.ui.navigation import Action, Screen
from scanner_app.ui.port import GateLike
from scanner_app.ui.shell import AppOptions
from scanner_app.ui.sound import Sounds
from scanner_app.ui.theme import apply_theme, palette
from scanner_app.ui.views.activity import ActivityActions, ActivityScreen
from scanner_app.ui.views.admin import AdminActions, AdminScreen
from scanner_app.ui.views.frame import AppFrame, FrameActions
from scanner_app.ui.views.lock import LockActions, LockScreen
from scanner_app.ui.views.pairing import PairActions, PairScreen, SetupActions, SetupScreen
from scanner_app.ui.views.scan import ScanActions, ScanScreen
from scanner_app.ui.views.search import SearchActions, SearchScreen
from scanner_app.ui.views.verdict import verdict_view
from scanner_app.ui.views.walkin import WalkinActions, WalkinScreen

__all__ = ["AppOptions", "DoorApp", "main", "run"]

log = logging.getLogger(__name__)
S = TypeVar("S")

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
REFOCUS_DELAY = 0.3


@dataclass
class _Session:
    """What one window holds while it is open."""

    closed: bool = False
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)
    verdict_serial: int = 0
    refreshing: bool = False
    refresh_again: bool = False
    listening: bool = False  # subscribed to the gate, loops running (once per window)


class DoorApp(LiveParts):
    """One window of the scanner app: its screens, keyboard, verdict overlay and live parts."""

    def __init__(self, page: ft.Page, gate: GateLike, options: AppOptions | None = None) -> None:
        self.page = page
        self.gate = gate
        self.options = options or AppOptions()
        self.lang = texts(self.options.lang).lang
        self.t = texts(self.lang)
        self.colours = palette(self.options.high_contrast)
        self.session = _Session()
        self.screen = Screen.PAIR
        self.events: list[EventChoice] = []
        self.config: GateConfig | None = None
        self.status: SyncStatus | None = None
        self.stats: GateStats | None = None
        self.revoked = False
        self.lock_mode = "enter"  # what the lock screen asks: enter | choose | set
        self.lock_note = ""
        self.last_denial: GateVerdict | None = None  # what the Override button lets in
        self.sounds = Sounds(self.options.sounds)
        self.actions = GateActions(self)
        self._screens: dict[Screen, Any] = {}
        self.frame = self._build_frame()

    def _build_frame(self) -> AppFrame:
        actions = FrameActions(
            self.toggle_language, self.toggle_contrast, self.actions.change_gate, self.show
        )
        return AppFrame(self.t, self.lang, self.colours, actions)

    # -- start and stop --------------------------------------------------------------------
    async def start(self) -> None:
        page = self.page
        page.title = self.t("app.title")
        page.padding = 0
        apply_theme(page, self.colours)
        page.on_keyboard_event = self._on_key
        page.on_disconnect = self.close
        page.on_connect = self._reconnected
        page.add(self.frame.root)
        locked = await asyncio.to_thread(lambda: self.gate.keys.locked)
        if locked is not None:  # the door PIN first; `opened` follows
            self.lock_mode = locked
            await self.show(Screen.LOCK)
            return
        await self.opened()

    async def opened(self) -> None:
        """The gate's data is open: listen to it, sync, and show where to start."""
        first = not self.session.listening
        if first:
            self.session.listening = True
            self._subscribe()
        await asyncio.to_thread(self.gate.start)
        paired, revoked, config = await asyncio.to_thread(
            lambda: (self.gate.paired, self.gate.revoked, self.gate.config)
        )
        self.config, self.revoked = config, revoked
        if paired:
            self.events = await asyncio.to_thread(self.gate.events)
        await self.read_status()
        await self.show(nav.start_screen(paired=paired, revoked=revoked, config=config))
        if first:
            self._start_loops()

    def _subscribe(self) -> None:
        session = self.session
        session.closed = False
        session.unsubscribe.append(self.gate.subscribe(lambda: self._from_thread(self.refresh)))
        if self.options.camera is not None:
            listener = CameraListener(
                verdict=lambda v: self._from_thread(self.show_verdict, v),
                pairing=lambda uri: self._from_thread(self.actions.camera_pairing, uri),
                problem=lambda msg: self._from_thread(self.actions.camera_problem, msg),
            )
            session.unsubscribe.append(self.options.camera.subscribe(listener))

    def _start_loops(self) -> None:
        self.page.run_task(self._tick_loop)
        if tracing():
            self.page.run_task(heartbeat, lambda: not self.session.closed)
        if self.options.camera is not None:
            self.page.run_task(self._preview_loop)

    def close(self) -> None:
        """The window went away: stop its loops and listeners (the gate keeps running)."""
        self.session.closed = True
        for unsubscribe in self.session.unsubscribe:
            unsubscribe()
        self.session.unsubscribe.clear()

    def _reconnected(self) -> None:
        if self.session.closed and self.session.listening:
            self._subscribe()
            self._start_loops()
            self._from_thread(self.refresh)

    def _from_thread(self, handler: Callable[..., Any], *args: Any) -> None:
        if not self.session.closed:
            self.page.run_task(handler, *args)

    # -- screens ---------------------------------------------------------------------------
    async def show(self, screen: Screen) -> None:
        self.screen = screen
        self.frame.show(screen, self._screen(screen).root)
        self.draw_status()
        if screen is Screen.SCAN:
            self.show_gate()
        if screen is Screen.ACTIVITY:
            await self._load_activity()
        self.page.update()
        if screen is Screen.SCAN:
            await self._focus_code()
        if screen in (Screen.SCAN, Screen.PAIR) and self.options.camera is not None:
            # the pairing screen reads the pairing QR held up to the camera
            await asyncio.to_thread(self.options.camera.start)

    def screen_of(self, kind: type[S]) -> S | None:
        """The built screen of that class, if any (handlers answer into it)."""
        return next((s for s in self._screens.values() if isinstance(s, kind)), None)

    def forget_screens(self, *screens: Screen) -> None:
        for screen in screens:
            self._screens.pop(screen, None)

    def _screen(self, screen: Screen) -> Any:
        if screen in (Screen.PAIR, Screen.SETUP, Screen.LOCK):  # always fresh: state, events
            self._screens.pop(screen, None)
        if screen not in self._screens:
            self._screens[screen] = self._build_screen(screen)
        return self._screens[screen]

    def _build_screen(self, screen: Screen) -> Any:
        t, colours, a = self.t, self.colours, self.actions
        if screen is Screen.LOCK:
            return LockScreen(
                t,
                colours,
                LockActions(a.lock_submit),
                self.lock_mode,
                t(self.lock_note) if self.lock_note else "",
            )
        if screen is Screen.PAIR:
            wiped = self.status.wiped if self.status is not None else None
            pair = PairActions(a.pair, a.pair_uri)
            return PairScreen(t, colours, pair, revoked=self.revoked, wiped=wiped)
        if screen is Screen.SETUP:
            setup = SetupActions(a.configure, a.refresh_events)
            return SetupScreen(t, colours, setup, self.events, self.config)
        if screen is Screen.SCAN:
            camera = self.options.camera
            scan = ScanScreen(
                t,
                colours,
                ScanActions(a.submit_code, a.set_direction, self.keep_focus, a.open_override),
                has_camera=camera is not None,
            )
            if camera is not None and camera.problem:
                scan.show_camera_problem(camera.problem)
            return scan
        if screen is Screen.SEARCH:
            search = SearchActions(a.search, a.open_attendee, a.check_attendee)
            return SearchScreen(t, colours, search)
        if screen is Screen.WALKIN:
            event = self._event()
            types = event.ticket_types if event else ()
            return WalkinScreen(t, colours, WalkinActions(a.register), types)
        if screen is Screen.ACTIVITY:
            return ActivityScreen(t, colours, ActivityActions(a.sync_now))
        return AdminScreen(t, colours, AdminActions(a.load_conflicts, a.resolve_conflict))

    def event_tz(self) -> Any:
        """The event's time zone (times at the door are the event's, not this machine's)."""
        event = self._event()
        with contextlib.suppress(ValueError, KeyError):  # an unknown zone: the machine's
            return ZoneInfo(event.timezone) if event is not None else None
        return None

    def _event(self) -> EventChoice | None:
        if self.config is None:
            return None
        return next((e for e in self.events if e.id == self.config.event_id), None)

    def show_gate(self) -> None:
        scan = self.screen_of(ScanScreen)
        if scan is None or self.config is None:
            return
        cp = forms.find_checkpoint(self.events, self.config.checkpoint_id)
        name = cp.name if cp else self.config.checkpoint_id
        scan.show_gate(name, self.config.direction, forms.directions_for(cp))

    # -- settings --------------------------------------------------------------------------
    async def toggle_language(self) -> None:
        self.lang = nav.other_lang(self.lang)
        self.t = texts(self.lang)
        await self._rebuild()

    async def toggle_contrast(self) -> None:
        self.colours = palette(not self.colours.high_contrast)
        apply_theme(self.page, self.colours)
        await self._rebuild()

    async def _rebuild(self) -> None:
        self._screens.clear()
        self.frame = self._build_frame()
        self.page.controls = [self.frame.root]
        self.page.title = self.t("app.title")
        await self.show(self.screen)

    # -- keyboard --------------------------------------------------------------------------
    async def _on_key(self, e: ft.KeyboardEvent) -> None:
        action = nav.shortcut(e.key, ctrl=e.ctrl, alt=e.alt, shift=e.shift)
        configured = self.screen in nav.NAV_SCREENS
        target = nav.SCREEN_OF_ACTION.get(action) if action else None
        if target is not None and configured:
            await self.show(target)
        elif action is Action.DISMISS:
            if self.frame.overlay_shown:
                await self.dismiss_verdict()
            elif configured and self.screen is not Screen.SCAN:
                await self.show(Screen.SCAN)
        elif action is Action.TOGGLE_DIRECTION and configured and self.config is not None:
            cp = forms.find_checkpoint(self.events, self.config.checkpoint_id)
            if len(forms.directions_for(cp)) > 1:
                await self.actions.set_direction("out" if self.config.direction == "in" else "in")
        elif action is Action.TOGGLE_LANGUAGE:
            await self.toggle_language()
        elif action is Action.SYNC_NOW and configured:
            await self.actions.sync_now()
        elif action is Action.OVERRIDE and configured:
            await self.actions.open_override()

    # -- verdicts --------------------------------------------------------------------------
    async def show_verdict(self, verdict: GateVerdict) -> None:
        if not verdict.accepted and verdict.attendee is not None:
            self.last_denial = verdict
        look = vm.verdict_look(
            verdict, self.t, hold_seconds=self.options.verdict_seconds, tz=self.event_tz()
        )
        width = self.page.width or None
        view = verdict_view(look, self.colours, self.t, self.dismiss_verdict, width)
        self.frame.show_overlay(view)
        self.session.verdict_serial += 1
        self.page.update()
        if tracing():
            trace("verdict_sent", name=look.name)
        self.page.run_task(self.sounds.play, look.tone)
        self.page.run_task(self._hide_later, self.session.verdict_serial, look.hold_seconds)

    async def _hide_later(self, serial: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if serial == self.session.verdict_serial and self.frame.overlay_shown:
            await self.dismiss_verdict()

    async def dismiss_verdict(self) -> None:
        self.session.verdict_serial += 1
        self.frame.show_overlay(None)
        self.page.update()
        if self.screen is Screen.SCAN:
            await self._focus_code()

    async def _focus_code(self) -> None:
        scan = self.screen_of(ScanScreen)
        if scan is not None and not self.session.closed:
            with contextlib.suppress(RuntimeError, TimeoutError):
                await scan.focus()

    async def keep_focus(self) -> None:
        """Handheld scanners type into whatever has focus: give it back to the code field (not
        while the override dialog is open: the supervisor is typing there)."""
        await asyncio.sleep(REFOCUS_DELAY)
        if self.screen is Screen.SCAN and not self.actions.dialog_open:
            await self._focus_code()


async def main(page: ft.Page, gate: GateLike, options: AppOptions | None = None) -> DoorApp:
    """Flet entry point for one window: `ft.run(lambda page: main(page, gate))`."""
    app = DoorApp(page, gate, options)
    await app.start()
    return app


def run(
    gate: GateLike,
    *,
    web: bool = False,
    port: int = 8550,
    options: AppOptions | None = None,
    assets_dir: Path = ASSETS_DIR,
) -> None:
    """Run the app until its window (desktop) or server (web) stops; starts and stops the gate,
    stops the camera (the first window to show the scan screen starts it)."""
    options = options or AppOptions()

    first = [True]

    async def session(page: ft.Page) -> None:
        await main(page, gate, options)
        if first[0]:  # Flet's server and the first window are loaded now: freeze them too
            first[0] = False
            gc.freeze()

    # What is loaded by now lives as long as the process, so keep it out of the garbage
    # collector's full passes. A large pull allocates enough to trigger one every few pages, and
    # each walks every tracked object while holding the GIL, so the UI loop waits: the longest
    # took 87-160 ms without the freeze, 25-28 ms with it (docs/benchmarks.md, "Scanner app (web
    # mode)"). Frozen objects are still freed by reference counting; only cycles among them stay.
    gc.collect()
    gc.freeze()
    gate.start()
    try:
        if web:
            ft.run(
                session,
                view=ft.AppView.WEB_BROWSER,
                host="127.0.0.1",
                port=port,
                assets_dir=str(assets_dir),
                no_cdn=True,
            )
        else:
            ft.run(session, assets_dir=str(assets_dir))
    finally:
        if options.camera is not None:
            options.camera.stop()
        gate.stop()
