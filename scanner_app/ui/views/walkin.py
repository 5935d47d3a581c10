"""Register someone at the door: a short form, inline errors from the core, then admit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import flet as ft

from scanner_app.ui.forms import parse_tags
from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["WalkinActions", "WalkinScreen"]

FIELDS = ("first_name", "last_name", "email", "ticket_type", "tags")


@dataclass(frozen=True, slots=True)
class WalkinActions:
    register: Callback  # (first_name, last_name, email, ticket_type, tags: list[str]) -> None


class WalkinScreen:
    def __init__(
        self,
        t: Texts,
        colours: Palette,
        actions: WalkinActions,
        ticket_types: Sequence[tuple[str, str]],
    ) -> None:
        self.t = t
        self.actions = actions
        self.first_name = text_field(t("walkin.first_name"), autofocus=True, key="first_name")
        self.last_name = text_field(t("walkin.last_name"), key="last_name")
        self.email = text_field(t("walkin.email"), keyboard_type=ft.KeyboardType.EMAIL, key="email")
        self.ticket_type = ft.Dropdown(
            label=t("walkin.ticket_type"),
            options=[ft.DropdownOption(key=slug, text=name) for slug, name in ticket_types],
            value=ticket_types[0][0] if ticket_types else None,
            text_size=FIELD_TEXT,
            expand=True,
            key="ticket_type",
        )
        self.tags = text_field(t("walkin.tags"), on_submit=self.submit, key="tags")
        self.message = ft.Text(
            "", color=colours.deny, size=FIELD_TEXT, visible=False, key="walkin-message"
        )
        self.button = big_button(t("walkin.submit"), self.submit, icon=ft.Icons.PERSON_ADD)
        self.root = screen_root(
            "screen-walkin",
            ft.Text(t("walkin.title"), size=32, weight=ft.FontWeight.BOLD),
            self.message,
            self.first_name,
            self.last_name,
            self.email,
            ft.Row(controls=[self.ticket_type]),
            self.tags,
            self.button,
        )

    async def submit(self) -> None:
        self.show_errors({})
        self.button.disabled = True
        await call(
            self.actions.register,
            (self.first_name.value or "").strip(),
            (self.last_name.value or "").strip(),
            (self.email.value or "").strip(),
            self.ticket_type.value or "",
            parse_tags(self.tags.value or ""),
        )

    def show_errors(self, errors: Mapping[str, str], general: str | None = None) -> None:
        """Each field's message under it; anything not tied to a field on top."""
        self.button.disabled = False
        for name in ("first_name", "last_name", "email", "tags"):
            field: ft.TextField = getattr(self, name)
            field.error = errors.get(name)
        self.ticket_type.error_text = errors.get("ticket_type")
        unplaced = [msg for key, msg in errors.items() if key not in FIELDS]
        if general:
            unplaced.insert(0, general)
        elif errors and not unplaced:
            unplaced.append(self.t("walkin.fix"))
        self.message.value = " ".join(unplaced)
        self.message.visible = bool(unplaced)

    def reset(self) -> None:
        """After a successful registration: empty form, ready for the next person."""
        self.show_errors({})
        for name in ("first_name", "last_name", "email", "tags"):
            getattr(self, name).value = ""
