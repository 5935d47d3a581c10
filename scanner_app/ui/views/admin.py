"""Admin on the device: an admin API key typed here lists the event's open sync conflicts and
resolves them (accept, void the reading, revoke the ticket, merge a walk-in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import flet as ft

from scanner_app.ui.forms import conflict_facts, conflict_resolutions, conflict_title
from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["AdminActions", "AdminScreen"]


@dataclass(frozen=True, slots=True)
class AdminActions:
    load: Callback  # (api_key) -> None; the app answers with show_conflicts or show_error
    resolve: Callback  # (conflict_id, resolution, note) -> None


class AdminScreen:
    def __init__(self, t: Texts, colours: Palette, actions: AdminActions) -> None:
        self.t = t
        self.colours = colours
        self.actions = actions
        self.api_key = text_field(
            t("admin.api_key"),
            password=True,
            can_reveal_password=True,
            autocorrect=False,
            on_submit=self.load,
            key="api-key",
        )
        self.message = ft.Text("", size=FIELD_TEXT, visible=False, key="admin-message")
        self.list = ft.Column(controls=[], spacing=12, key="conflicts")
        self.notes: dict[str, ft.TextField] = {}
        self.root = screen_root(
            "screen-admin",
            ft.Text(t("admin.title"), size=32, weight=ft.FontWeight.BOLD),
            self.api_key,
            big_button(t("admin.load"), self.load, icon=ft.Icons.GAVEL),
            self.message,
            self.list,
        )

    async def load(self) -> None:
        key = (self.api_key.value or "").strip()
        if not key:
            self.show_error(self.t("admin.need_key"))
            return
        await call(self.actions.load, key)

    def show_error(self, message: str) -> None:
        self.message.value = message
        self.message.color = self.colours.deny
        self.message.visible = True

    def show_conflicts(self, conflicts: Sequence[Mapping[str, Any]]) -> None:
        self.message.value = "" if conflicts else self.t("admin.empty")
        self.message.color = self.colours.muted
        self.message.visible = not conflicts
        self.notes = {}
        self.list.controls = [self._card(c) for c in conflicts]

    def _card(self, conflict: Mapping[str, Any]) -> ft.Card:
        t = self.t
        conflict_id = str(conflict.get("id", ""))
        note = text_field(t("admin.note"), key=f"note-{conflict_id}")
        self.notes[conflict_id] = note
        facts = conflict_facts(conflict, t)
        resolved = conflict.get("resolution")
        buttons: list[ft.Control] = []
        if resolved:
            buttons.append(
                ft.Text(t("admin.resolved", resolution=t(f"resolution.{resolved}")), size=18)
            )
        else:
            for resolution in conflict_resolutions(str(conflict.get("kind", ""))):
                buttons.append(
                    big_button(
                        t(f"resolution.{resolution}"),
                        self._resolver(conflict_id, resolution),
                        primary=resolution == "accept",
                        key=f"{resolution}-{conflict_id}",
                    )
                )
        return ft.Card(
            content=ft.Container(
                content=ft.Column(
                    controls=[
                        ft.Text(conflict_title(conflict, t), size=22, weight=ft.FontWeight.BOLD),
                        ft.Text(" · ".join(facts), color=self.colours.muted, selectable=True),
                        *([] if resolved else [note]),
                        ft.Row(controls=buttons, wrap=True),
                    ],
                    spacing=10,
                ),
                padding=ft.Padding.all(16),
            ),
            key=f"conflict-{conflict_id}",
            data=conflict_id,
        )

    def _resolver(self, conflict_id: str, resolution: str) -> Callback:
        async def resolve() -> None:
            note = self.notes.get(conflict_id)
            await call(
                self.actions.resolve, conflict_id, resolution, (note.value if note else "") or ""
            )

        return resolve
