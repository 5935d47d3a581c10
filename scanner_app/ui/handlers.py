"""What the screens ask of the gate: each handler runs one blocking gate call off the UI loop
(`asyncio.to_thread`) and hands the answer back to a screen or to the verdict overlay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import flet as ft

from scanner_app.errors import GateError, Problem, WalkinInvalid
from scanner_app.state import OverrideRequest
from scanner_app.trace import trace, tracing
from scanner_app.ui import forms
from scanner_app.ui.navigation import Screen
from scanner_app.ui.shell import Shell
from scanner_app.ui.viewmodel import reason_text as vm_reason
from scanner_app.ui.views.admin import AdminScreen
from scanner_app.ui.views.lock import LockScreen
from scanner_app.ui.views.override import OverrideActions, OverrideDialog
from scanner_app.ui.views.pairing import PairScreen
from scanner_app.ui.views.scan import ScanScreen
from scanner_app.ui.views.search import SearchScreen
from scanner_app.ui.views.walkin import WalkinScreen

__all__ = ["GateActions"]

T = TypeVar("T")


class GateActions:
    """The callbacks the screens are built with; `app` draws the results."""

    def __init__(self, app: Shell) -> None:
        self.app = app
        self.gate = app.gate
        self.api_key: str | None = None  # the admin's, while the admin screen uses it
        self._search_serial = 0
        self._override: OverrideDialog | None = None

    def _words(self, exc: GateError) -> str:
        return forms.problem_text(exc.code.value, str(exc), self.app.t)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a blocking gate call off the loop; a refusal by the core becomes a message."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except GateError as exc:
            self._toast(self._words(exc))
            return None

    def _toast(self, message: str) -> None:
        self.app.page.show_dialog(
            ft.SnackBar(content=ft.Text(message, size=18), duration=ft.Duration(seconds=5))
        )

    # -- scanning ----------------------------------------------------------------------------
    async def submit_code(self, text: str) -> None:
        received_at = time.time()
        verdict = await self._call(self.gate.submit, text, source="keyboard")
        if verdict is not None:
            if tracing():
                name = verdict.attendee.name if verdict.attendee else ""
                trace("keyboard_verdict", received_at=received_at, name=name)
            await self.app.show_verdict(verdict)

    async def set_direction(self, direction: str) -> None:
        await self._call(self.gate.set_direction, direction)
        self.app.config = await asyncio.to_thread(lambda: self.gate.config)
        self.app.show_gate()
        self.app.page.update()

    async def camera_problem(self, message: str) -> None:
        scan = self.app.screen_of(ScanScreen)
        if scan is not None:
            scan.show_camera_problem(message)
            self.app.page.update()

    # -- supervisor override ----------------------------------------------------------------
    @property
    def dialog_open(self) -> bool:
        return self._override is not None

    async def open_override(self) -> None:
        """The override dialog for the last denied guest (SPEC section 11)."""
        app = self.app
        denied = app.last_denial
        if denied is None or denied.attendee is None:
            self._toast(app.t("override.none"))
            return
        why = app.t("override.why", reason=vm_reason(denied, app.t))
        actions = OverrideActions(self.submit_override, self.close_override)
        self._override = OverrideDialog(app.t, app.colours, actions, denied.attendee.name, why)
        app.page.show_dialog(self._override.dialog)

    async def submit_override(self, reason: str, note: str, pin: str) -> None:
        app, dialog, denied = self.app, self._override, self.app.last_denial
        if dialog is None or denied is None or denied.attendee is None:
            return
        request = OverrideRequest(denied.attendee.id, pin, reason, note)
        try:
            verdict = await asyncio.to_thread(self.gate.override, request)
        except GateError as exc:  # OverrideRefused names the field and the wait
            words = self._words(exc)
            wait = getattr(exc, "retry_after", 0)
            if exc.code is Problem.OVERRIDE_PIN_WRONG and wait:
                words = app.t("override.wait", seconds=int(wait + 0.999))
            dialog.show_error(words, getattr(exc, "field", None))
            app.page.update()
            return
        await self.close_override()
        app.last_denial = None
        await app.show_verdict(verdict)

    async def close_override(self) -> None:
        if self._override is not None:
            self._override = None
            self.app.page.pop_dialog()
            await self.app.keep_focus()

    # -- the door PIN ------------------------------------------------------------------------
    async def lock_submit(self, mode: str, pin: str, confirm: str) -> None:
        """Enter, choose or set the door PIN; then open the gate (or go back to scanning)."""
        app, t = self.app, self.app.t
        screen = app.screen_of(LockScreen)
        if forms.pin_mismatch(mode, pin, confirm):
            if screen is not None:
                screen.show_error(t("lock.mismatch"))
                app.page.update()
            return
        keys = self.gate.keys
        try:
            await asyncio.to_thread(keys.set_pin if mode == "set" else keys.unlock, pin)
        except GateError as exc:
            if exc.code is Problem.WIPED:  # the tenth wrong PIN erased the gate
                app.lock_note = "pair.wiped.pin"
                await self._after_lock(await asyncio.to_thread(lambda: keys.locked))
                return
            wrong = exc.code is Problem.PIN_WRONG
            words = (
                forms.pin_wrong_text(getattr(exc, "remaining", 0), getattr(exc, "wait_s", 0), t)
                if wrong
                else self._words(exc)
            )
            if screen is not None:
                screen.show_error(words)
                app.page.update()
            return
        app.lock_note = ""
        await self._after_lock(None if mode != "set" else "set")

    async def _after_lock(self, locked: str | None) -> None:
        app = self.app
        if locked is not None and locked != "set":
            app.lock_mode = locked
            await app.show(Screen.LOCK)
        elif locked == "set":  # the PIN is set: back to the door
            await app.show(Screen.SCAN if app.config is not None else Screen.SETUP)
        else:
            await app.opened()

    # -- pairing and setup -------------------------------------------------------------------
    async def pair(self, server_url: str, code: str, name: str) -> None:
        await self._pair(self.gate.pair, server_url, code, name)

    async def pair_uri(self, uri: str, name: str) -> None:
        await self._pair(self.gate.pair_uri, uri, name)

    async def camera_pairing(self, uri: str) -> None:
        """A pairing QR held up to the camera while the pairing screen is open."""
        screen = self.app.screen_of(PairScreen)
        if self.app.screen is Screen.PAIR and screen is not None:
            screen.uri.value = uri
            await screen.submit()

    async def _pair(self, fn: Callable[..., None], *args: str) -> None:
        app = self.app
        try:
            await asyncio.to_thread(fn, *args)
        except GateError as exc:
            screen = app.screen_of(PairScreen)
            if screen is not None:
                screen.show_error(self._words(exc))
            return
        app.revoked = False
        if app.options.camera is not None:  # it read the pairing QR; scanning starts it afresh
            await asyncio.to_thread(app.options.camera.reset)
        await asyncio.to_thread(self.gate.start)  # the sync loop runs only on a paired gate
        app.events = await asyncio.to_thread(self.gate.events)
        app.config = await asyncio.to_thread(lambda: self.gate.config)
        await app.read_status()
        await app.show(Screen.SETUP)

    async def configure(self, event_id: str, checkpoint_id: str, direction: str, op: str) -> None:
        config = await self._call(self.gate.configure, event_id, checkpoint_id, direction, op)
        if config is None:
            return
        self.app.config = config
        self.app.forget_screens(Screen.WALKIN, Screen.SEARCH)  # they belong to the event
        self.api_key = None
        await self.app.read_status()
        await self.app.show(Screen.SCAN)

    async def refresh_events(self) -> None:
        await self._call(self.gate.sync_now)
        self.app.events = await asyncio.to_thread(self.gate.events)
        await self.app.read_status()
        await self.app.show(Screen.SETUP)

    async def change_gate(self) -> None:
        self.app.events = await asyncio.to_thread(self.gate.events)
        await self.app.show(Screen.SETUP)

    # -- search and manual check-in ----------------------------------------------------------
    async def search(self, query: str) -> None:
        self._search_serial += 1
        serial = self._search_serial
        people = await asyncio.to_thread(self.gate.search, query)
        screen = self.app.screen_of(SearchScreen)
        if serial == self._search_serial and screen is not None:  # an older answer is dropped
            screen.show_results(people)

    async def open_attendee(self, attendee_id: str) -> None:
        att = await asyncio.to_thread(self.gate.attendee, attendee_id)
        screen = self.app.screen_of(SearchScreen)
        if att is not None and screen is not None:
            screen.show_attendee(att)

    async def check_attendee(self, attendee_id: str, direction: str) -> None:
        verdict = await self._call(self.gate.check_in_attendee, attendee_id, direction)
        if verdict is None:
            return
        await self.open_attendee(attendee_id)
        await self.app.show_verdict(verdict)

    # -- walk-ins ----------------------------------------------------------------------------
    async def register(
        self, first_name: str, last_name: str, email: str, ticket_type: str, tags: list[str]
    ) -> None:
        app = self.app
        screen = app.screen_of(WalkinScreen)
        try:
            verdict = await asyncio.to_thread(
                self.gate.register_walkin, first_name, last_name, email, ticket_type, tags
            )
        except WalkinInvalid as exc:
            if screen is not None:
                problems = exc.problems.items()
                screen.show_errors({k: forms.field_error_text(p, app.t) for k, p in problems})
            return
        except GateError as exc:
            if screen is not None:
                screen.show_errors({}, self._words(exc))
            return
        if screen is not None:
            screen.reset()
        await app.show_verdict(verdict)

    # -- sync --------------------------------------------------------------------------------
    async def sync_now(self) -> None:
        self.app.draw_status(syncing=True)
        self.app.page.update()
        await self._call(self.gate.sync_now)
        await self.app.refresh()

    # -- admin -------------------------------------------------------------------------------
    async def load_conflicts(self, api_key: str) -> None:
        app = self.app
        screen = app.screen_of(AdminScreen)
        if screen is None:
            return
        if app.config is None:
            screen.show_error(app.t("admin.no_server"))
            return
        try:
            conflicts = await asyncio.to_thread(self.gate.conflicts, api_key, "open")
        except GateError as exc:
            self.api_key = None
            screen.show_error(self._words(exc))
            return
        self.api_key = api_key
        screen.show_conflicts(conflicts)

    async def resolve_conflict(self, conflict_id: str, resolution: str, note: str) -> None:
        app = self.app
        screen = app.screen_of(AdminScreen)
        key = self.api_key
        if key is None or screen is None or app.config is None:
            return
        try:
            await asyncio.to_thread(self.gate.resolve_conflict, key, conflict_id, resolution, note)
            conflicts = await asyncio.to_thread(self.gate.conflicts, key, "open")
        except GateError as exc:
            screen.show_error(self._words(exc))
            return
        screen.show_conflicts(conflicts)
