"""Search attendees on this device, open one, check them in or out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import flet as ft

from scanner_app.state import AttendeeSummary
from scanner_app.ui.forms import attendee_line
from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, NAME_TEXT, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["SearchActions", "SearchScreen"]

MIN_QUERY = 2


@dataclass(frozen=True, slots=True)
class SearchActions:
    search: Callback  # (query) -> None; the app answers with show_results
    open: Callback  # (attendee_id) -> None; the app answers with show_attendee
    check: Callback  # (attendee_id, "in" | "out") -> None


class SearchScreen:
    def __init__(self, t: Texts, colours: Palette, actions: SearchActions) -> None:
        self.t = t
        self.colours = colours
        self.actions = actions
        self.query = text_field(
            t("search.hint"),
            prefix_icon=ft.Icons.SEARCH,
            autofocus=True,
            on_change=self._changed,
            on_submit=self._changed,
            key="search-query",
        )
        self.info = ft.Text(t("search.prompt"), color=colours.muted, size=FIELD_TEXT)
        self.results = ft.Column(controls=[], spacing=4, key="results")
        self.detail = ft.Column(controls=[], spacing=12, visible=False, key="detail")
        self.attendee_shown: AttendeeSummary | None = None
        self.root = screen_root(
            "screen-search",
            ft.Text(t("search.title"), size=32, weight=ft.FontWeight.BOLD),
            self.query,
            self.info,
            self.results,
            self.detail,
        )

    async def _changed(self) -> None:
        q = (self.query.value or "").strip()
        if len(q) < MIN_QUERY:
            self.show_results([], prompt=True)
            return
        await call(self.actions.search, q)

    def show_results(self, people: Sequence[AttendeeSummary], *, prompt: bool = False) -> None:
        self.detail.visible = False
        self.results.visible = True
        self.info.value = self.t("search.prompt") if prompt else self.t("search.empty")
        self.info.visible = prompt or not people
        self.results.controls = [self._row(att) for att in people]

    def _row(self, att: AttendeeSummary) -> ft.ListTile:
        async def opened() -> None:
            await call(self.actions.open, att.id)

        return ft.ListTile(
            leading=ft.Icon(
                ft.Icons.STAR if att.is_vip else ft.Icons.PERSON,
                color="#FFD700" if att.is_vip else self.colours.muted,
            ),
            title=ft.Text(att.name, size=FIELD_TEXT, weight=ft.FontWeight.BOLD),
            subtitle=ft.Text(attendee_line(att, self.t), size=16),
            on_click=opened,
            min_vertical_padding=12,
            key=f"att-{att.id}",
            data=att.id,
        )

    def show_attendee(self, att: AttendeeSummary) -> None:
        """The detail of one person with manual check-in and check-out buttons."""
        t = self.t
        self.attendee_shown = att

        async def check_in() -> None:
            await call(self.actions.check, att.id, "in")

        async def check_out() -> None:
            await call(self.actions.check, att.id, "out")

        def back() -> None:
            self.detail.visible = False
            self.results.visible = True

        facts = [
            (t("search.ticket"), att.ticket_type_name or att.ticket_type or "—"),
            (
                t("search.status"),
                t(f"attendee.{att.status}") if t.has(f"attendee.{att.status}") else att.status,
            ),
            (t("search.inside"), t("search.inside") if att.inside else t("search.outside")),
            (t("search.email"), att.email or "—"),
            (t("search.tags"), ", ".join(att.tags) or "—"),
            (t("search.code"), att.code or "—"),
        ]
        header: list[ft.Control] = [
            ft.Text(att.name, size=NAME_TEXT, weight=ft.FontWeight.BOLD, key="detail-name")
        ]
        if att.is_vip:
            header.append(
                ft.Container(
                    content=ft.Text(t("verdict.vip"), color="#000000", weight=ft.FontWeight.BOLD),
                    bgcolor="#FFD700",
                    padding=ft.Padding.symmetric(horizontal=10, vertical=4),
                    border_radius=ft.BorderRadius.all(8),
                )
            )
        self.detail.controls = [
            ft.Row(controls=header, wrap=True),
            *[
                ft.Row(
                    controls=[
                        ft.Text(label, color=self.colours.muted, size=16, width=120),
                        ft.Text(value, size=FIELD_TEXT, selectable=True),
                    ]
                )
                for label, value in facts
            ],
            ft.Row(
                controls=[
                    big_button(t("search.check_in"), check_in, icon=ft.Icons.LOGIN),
                    big_button(t("search.check_out"), check_out, icon=ft.Icons.LOGOUT),
                    big_button(t("search.back"), back, icon=ft.Icons.ARROW_BACK, primary=False),
                ],
                wrap=True,
            ),
        ]
        self.detail.visible = True
        self.results.visible = False
        self.info.visible = False
