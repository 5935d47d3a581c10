"""The supervisor override dialog (SPEC section 11): the denied guest, why they are let in
anyway (a reason from the list and a note, both required) and the event's override PIN,
checked on the device. It opens from the scan screen's Override button (or F8) for the last
denial."""

from __future__ import annotations

from dataclasses import dataclass

import flet as ft

from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, Palette
from scanner_app.ui.views.common import Callback, call, text_field
from shared.kinds import OverrideReason

__all__ = ["OverrideActions", "OverrideDialog"]


@dataclass(frozen=True, slots=True)
class OverrideActions:
    submit: Callback  # (reason, note, pin) -> None
    cancel: Callback  # () -> None


class OverrideDialog:
    def __init__(
        self, t: Texts, colours: Palette, actions: OverrideActions, who: str, why: str
    ) -> None:
        self.t, self.actions = t, actions
        self.reason = ft.Dropdown(
            label=t("override.reason"),
            options=[
                ft.DropdownOption(key=r.value, text=t(f"override.reason.{r.value}"))
                for r in OverrideReason
            ],
            key="override-reason",
            expand=True,
        )
        self.note = text_field(
            t("override.note"), multiline=True, min_lines=2, max_lines=3, max_length=500,
            key="override-note", width=520,
        )  # fmt: skip
        self.pin = text_field(
            t("override.pin"), password=True, can_reveal_password=True, max_length=12,
            keyboard_type=ft.KeyboardType.NUMBER, on_submit=self.submit, key="override-pin",
            width=520,
        )  # fmt: skip
        self.message = ft.Text("", color=colours.deny, size=FIELD_TEXT, visible=False)
        self.confirm = ft.FilledButton(
            content=t("override.confirm"), icon=ft.Icons.VERIFIED_USER, on_click=self.submit
        )
        self.dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(t("override.title"), size=28, weight=ft.FontWeight.BOLD),
            content=ft.Semantics(
                identifier="override",
                container=True,
                content=ft.Column(
                    controls=[
                        ft.Text(who, size=FIELD_TEXT, weight=ft.FontWeight.BOLD),
                        ft.Text(why, size=FIELD_TEXT, color=colours.muted),
                        ft.Semantics(identifier="override-reason", content=self.reason),
                        self.note,
                        self.pin,
                        self.message,
                    ],
                    tight=True,
                    spacing=12,
                    width=520,
                    scroll=ft.ScrollMode.AUTO,
                ),
            ),
            actions=[
                ft.TextButton(content=t("override.cancel"), on_click=self._cancel),
                self.confirm,
            ],
        )

    async def submit(self) -> None:
        self.confirm.disabled = True
        self.message.value, self.message.visible = self.t("override.checking"), True
        await call(
            self.actions.submit,
            self.reason.value or "",
            self.note.value or "",
            self.pin.value or "",
        )

    async def _cancel(self) -> None:
        await call(self.actions.cancel)

    def show_error(self, message: str, field: str | None = None) -> None:
        """The refusal in words; the fields keep what was typed (emptying a field from here
        races with the typist), so the PIN is typed over."""
        self.confirm.disabled = False
        self.message.value, self.message.visible = message, True
