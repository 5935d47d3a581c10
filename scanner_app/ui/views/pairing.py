"""First run: pair the scanner with a server, then choose the event, checkpoint and direction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flet as ft

from scanner_app.links import is_pairing_uri
from scanner_app.state import EventChoice, GateConfig
from scanner_app.ui.forms import directions_for
from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["PairActions", "PairScreen", "SetupActions", "SetupScreen"]


@dataclass(frozen=True, slots=True)
class PairActions:
    pair: Callback  # (server_url, code, name) -> None
    pair_uri: Callback  # (uri, name) -> None


class PairScreen:
    def __init__(
        self,
        t: Texts,
        colours: Palette,
        actions: PairActions,
        *,
        revoked: bool = False,
        wiped: str | None = None,
    ) -> None:
        self.t = t
        self.actions = actions
        self.server = text_field(t("pair.server"), hint_text="https://", autofocus=True)
        self.code = text_field(t("pair.code"), autocorrect=False, on_submit=self.submit)
        self.name = text_field(t("pair.name"), value=t("pair.default_name"))
        self.uri = text_field(t("pair.uri"), autocorrect=False, on_submit=self.submit)
        note = t(f"pair.wiped.{wiped}") if wiped else t("pair.revoked") if revoked else ""
        self.message = ft.Text(
            note, color=colours.deny, size=FIELD_TEXT, visible=bool(note), key="pair-message"
        )
        self.button = big_button(t("pair.submit"), self.submit, icon=ft.Icons.LINK)
        self.root = screen_root(
            "screen-pair",
            ft.Text(t("pair.title"), size=32, weight=ft.FontWeight.BOLD),
            ft.Text(t("pair.intro"), size=FIELD_TEXT, color=colours.muted),
            self.message,
            self.server,
            self.code,
            self.uri,
            self.name,
            self.button,
        )

    async def submit(self) -> None:
        name = (self.name.value or "").strip() or self.t("pair.default_name")
        uri = (self.uri.value or "").strip()
        code = (self.code.value or "").strip()
        server = (self.server.value or "").strip()
        if not uri and is_pairing_uri(code):
            uri = code
        if uri:
            self.set_busy(True)
            await call(self.actions.pair_uri, uri, name)
        elif server and code:
            self.set_busy(True)
            await call(self.actions.pair, server, code, name)
        else:
            self.show_error(self.t("pair.missing"))

    def set_busy(self, busy: bool) -> None:
        self.button.disabled = busy
        if busy:
            self.message.value = self.t("pair.working")
            self.message.visible = True

    def show_error(self, message: str) -> None:
        self.button.disabled = False
        self.message.value = message
        self.message.visible = True


@dataclass(frozen=True, slots=True)
class SetupActions:
    configure: Callback  # (event_id, checkpoint_id, direction, operator) -> None
    refresh: Callback  # () -> None: sync now, then show the events again


class SetupScreen:
    """Dropdowns for event and checkpoint, the direction, and the operator's name."""

    def __init__(
        self,
        t: Texts,
        colours: Palette,
        actions: SetupActions,
        events: Sequence[EventChoice],
        current: GateConfig | None = None,
    ) -> None:
        self.t = t
        self.actions = actions
        self.events = list(events)
        self.event = ft.Dropdown(
            label=t("setup.event"),
            options=[ft.DropdownOption(key=e.id, text=e.name) for e in self.events],
            on_select=self._event_selected,
            expand=True,
            text_size=FIELD_TEXT,
            key="event",
        )
        self.checkpoint = ft.Dropdown(
            label=t("setup.checkpoint"),
            on_select=self._checkpoint_selected,
            expand=True,
            text_size=FIELD_TEXT,
            key="checkpoint",
        )
        self.direction = ft.SegmentedButton(
            segments=[
                ft.Segment(value="in", label=t("direction.in"), icon=ft.Icons.LOGIN),
                ft.Segment(value="out", label=t("direction.out"), icon=ft.Icons.LOGOUT),
            ],
            selected=["in"],
            allow_empty_selection=False,
            key="setup-direction",
        )
        self.operator = text_field(
            t("setup.operator"), value=current.operator if current else "", on_submit=self.submit
        )
        self.message = ft.Text(
            t("setup.no_events") if not self.events else "",
            color=colours.warn,
            size=FIELD_TEXT,
            visible=not self.events,
            key="setup-message",
        )
        self.root = screen_root(
            "screen-setup",
            ft.Text(t("setup.title"), size=32, weight=ft.FontWeight.BOLD),
            self.message,
            ft.Row(controls=[self.event]),
            ft.Row(controls=[self.checkpoint]),
            ft.Text(t("setup.direction"), size=FIELD_TEXT),
            self.direction,
            self.operator,
            ft.Row(
                controls=[
                    big_button(t("setup.start"), self.submit, icon=ft.Icons.PLAY_ARROW),
                    big_button(
                        t("setup.refresh"), self._refresh, icon=ft.Icons.SYNC, primary=False
                    ),
                ],
                wrap=True,
            ),
        )
        if current is not None:
            self.select_event(current.event_id, current.checkpoint_id, current.direction)
        elif self.events:
            self.select_event(self.events[0].id)

    def _chosen_event(self) -> EventChoice | None:
        return next((e for e in self.events if e.id == self.event.value), None)

    def select_event(
        self, event_id: str, checkpoint_id: str | None = None, direction: str | None = None
    ) -> None:
        """Show an event's checkpoints and pick one (the given one, else the first active)."""
        self.event.value = event_id
        event = self._chosen_event()
        checkpoints = event.checkpoints if event else ()
        self.checkpoint.options = [
            ft.DropdownOption(
                key=cp.id,
                text=cp.name if cp.active else self.t("setup.inactive", name=cp.name),
            )
            for cp in checkpoints
        ]
        chosen = next((cp for cp in checkpoints if cp.id == checkpoint_id), None)
        chosen = chosen or next((cp for cp in checkpoints if cp.active), None)
        self.select_checkpoint(chosen.id if chosen else None, direction)

    def select_checkpoint(self, checkpoint_id: str | None, direction: str | None = None) -> None:
        self.checkpoint.value = checkpoint_id
        event = self._chosen_event()
        cp = next((c for c in (event.checkpoints if event else ()) if c.id == checkpoint_id), None)
        allowed = directions_for(cp)
        self.direction.selected = [direction if direction in allowed else allowed[0]]
        self.direction.disabled = len(allowed) == 1

    async def _event_selected(self) -> None:
        if self.event.value:
            self.select_event(self.event.value)

    async def _checkpoint_selected(self) -> None:
        self.select_checkpoint(self.checkpoint.value)

    async def submit(self) -> None:
        if not self.event.value or not self.checkpoint.value:
            self.message.value = self.t("setup.pick")
            self.message.visible = True
            return
        direction = self.direction.selected[0] if self.direction.selected else "in"
        await call(
            self.actions.configure,
            self.event.value,
            self.checkpoint.value,
            direction,
            (self.operator.value or "").strip(),
        )

    async def _refresh(self) -> None:
        await call(self.actions.refresh)
