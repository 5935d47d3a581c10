"""The window around every screen: a header (language, contrast, gate, shortcuts), the screen,
the status bar, the navigation bar, and the verdict overlay above all of it."""

from __future__ import annotations

from dataclasses import dataclass

import flet as ft

from scanner_app.ui.i18n import Lang, Texts
from scanner_app.ui.navigation import NAV_SCREENS, Screen, other_lang
from scanner_app.ui.theme import TOUCH, Palette
from scanner_app.ui.views.common import Callback, call

__all__ = ["AppFrame", "FrameActions"]

NAV_ICONS = (
    ft.Icons.QR_CODE_SCANNER,
    ft.Icons.SEARCH,
    ft.Icons.PERSON_ADD,
    ft.Icons.HISTORY,
    ft.Icons.ADMIN_PANEL_SETTINGS,
)


@dataclass(frozen=True, slots=True)
class FrameActions:
    toggle_language: Callback  # () -> None
    toggle_contrast: Callback  # () -> None
    change_gate: Callback  # () -> None
    navigate: Callback  # (Screen) -> None


class AppFrame:
    def __init__(self, t: Texts, lang: Lang, colours: Palette, actions: FrameActions) -> None:
        self.actions = actions
        self.body = ft.Container(expand=True)
        self.status_holder = ft.Container(visible=False)
        self.nav = ft.NavigationBar(
            destinations=[
                ft.NavigationBarDestination(icon=icon, label=t(f"nav.{screen.value}"))
                for screen, icon in zip(NAV_SCREENS, NAV_ICONS, strict=True)
            ],
            on_change=self._nav_changed,
            visible=False,
        )
        self.language = ft.TextButton(
            content=t(f"lang.{other_lang(lang).value}"),
            on_click=actions.toggle_language,
            tooltip=t("nav.language"),
            height=TOUCH,
            key="lang",
        )
        self.change_gate = ft.IconButton(
            icon=ft.Icons.TUNE,
            tooltip=t("nav.change_gate"),
            on_click=actions.change_gate,
            icon_size=28,
            visible=False,
            key="change-gate",
        )
        header = ft.Container(
            content=ft.Row(
                controls=[
                    ft.Text(t("app.title"), size=22, weight=ft.FontWeight.BOLD),
                    ft.Row(
                        controls=[
                            self.language,
                            ft.IconButton(
                                icon=ft.Icons.CONTRAST,
                                tooltip=t("nav.contrast"),
                                on_click=actions.toggle_contrast,
                                selected=colours.high_contrast,
                                icon_size=28,
                                key="contrast",
                            ),
                            self.change_gate,
                            ft.IconButton(
                                icon=ft.Icons.KEYBOARD, tooltip=t("nav.shortcuts"), icon_size=28
                            ),
                        ],
                        spacing=4,
                        tight=True,
                    ),
                ],
                alignment=ft.MainAxisAlignment.SPACE_BETWEEN,
            ),
            padding=ft.Padding.symmetric(horizontal=16, vertical=4),
            bgcolor=colours.surface,
        )
        self.overlay = ft.Container(visible=False, left=0, top=0, right=0, bottom=0)
        main = ft.Container(
            content=ft.Column(
                controls=[header, self.body, self.status_holder, self.nav],
                spacing=0,
                expand=True,
                horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            ),
            left=0,
            top=0,
            right=0,
            bottom=0,
        )
        self.root = ft.Stack(controls=[main, self.overlay], expand=True)

    def show(self, screen: Screen, content: ft.Control) -> None:
        """Put a screen in the body; the navigation and status bars only once a gate is set."""
        self.body.content = content
        in_nav = screen in NAV_SCREENS
        self.nav.visible = in_nav
        self.change_gate.visible = in_nav
        if in_nav:
            self.nav.selected_index = NAV_SCREENS.index(screen)
        self.status_holder.visible = screen not in (Screen.PAIR, Screen.LOCK)

    def show_status(self, bar: ft.Control) -> None:
        self.status_holder.content = bar

    def show_overlay(self, content: ft.Control | None) -> None:
        self.overlay.content = content
        self.overlay.visible = content is not None

    @property
    def overlay_shown(self) -> bool:
        return bool(self.overlay.visible)

    async def _nav_changed(self) -> None:
        index = self.nav.selected_index
        if 0 <= index < len(NAV_SCREENS):
            await call(self.actions.navigate, NAV_SCREENS[index])
