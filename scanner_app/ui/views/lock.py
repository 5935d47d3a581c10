"""The door PIN: entered when the gate's data is sealed under one, chosen on a machine without
secure key storage or when the event asks for one (`mode`: enter | choose | set)."""

from __future__ import annotations

from dataclasses import dataclass

import flet as ft

from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["LockActions", "LockScreen"]


@dataclass(frozen=True, slots=True)
class LockActions:
    submit: Callback  # (mode, pin, confirm) -> None


class LockScreen:
    def __init__(
        self, t: Texts, colours: Palette, actions: LockActions, mode: str, note: str = ""
    ) -> None:
        self.t, self.mode, self.actions = t, mode, actions
        digits = {
            "password": True,
            "can_reveal_password": True,
            "keyboard_type": ft.KeyboardType.NUMBER,
            "max_length": 12,
            "autocorrect": False,
        }
        self.pin = text_field(
            t("lock.pin"), autofocus=True, on_submit=self.submit, key="pin", **digits
        )
        self.confirm = text_field(
            t("lock.confirm"),
            on_submit=self.submit,
            key="pin-confirm",
            visible=mode != "enter",
            **digits,
        )
        self.message = ft.Text(
            note, color=colours.deny, size=FIELD_TEXT, visible=bool(note), key="lock-message"
        )
        label = t("lock.open") if mode == "enter" else t("lock.set")
        self.button = big_button(label, self.submit, icon=ft.Icons.LOCK_OPEN, key="lock-submit")
        self.root = screen_root(
            "screen-lock",
            ft.Text(t(f"lock.title.{mode}"), size=32, weight=ft.FontWeight.BOLD),
            ft.Text(t(f"lock.intro.{mode}"), size=FIELD_TEXT, color=colours.muted),
            self.message,
            self.pin,
            self.confirm,
            self.button,
        )

    async def submit(self) -> None:
        self.set_busy(True)
        await call(self.actions.submit, self.mode, self.pin.value or "", self.confirm.value or "")

    def set_busy(self, busy: bool) -> None:
        self.button.disabled = busy
        if busy:
            self.message.value = self.t("lock.working")
            self.message.visible = True

    def show_error(self, message: str) -> None:
        self.button.disabled = False
        self.pin.value = self.confirm.value = ""
        self.message.value = message
        self.message.visible = True
