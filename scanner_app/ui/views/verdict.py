"""The full-screen verdict: colour, icon and one big word, then name, ticket and reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft

from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import (
    NAME_TEXT,
    REASON_TEXT,
    TONE_ICONS,
    Palette,
    word_size,
)
from scanner_app.ui.viewmodel import VerdictLook, verdict_label

__all__ = ["verdict_view"]


def _chip(text: str, fg: str, bg: str) -> ft.Container:
    return ft.Container(
        content=ft.Text(text, size=REASON_TEXT - 4, weight=ft.FontWeight.BOLD, color=fg),
        bgcolor=bg,
        padding=ft.Padding.symmetric(horizontal=14, vertical=6),
        border_radius=ft.BorderRadius.all(10),
    )


def verdict_view(
    look: VerdictLook,
    colours: Palette,
    t: Texts,
    on_dismiss: Callable[..., Any] | None = None,
    width: float | None = None,
) -> ft.Semantics:
    """The overlay for one verdict; tapping it closes it early."""
    fg = colours.on_tone(look.tone)
    size = word_size(look.word, width)
    bg = colours.tone(look.tone)
    badges: list[ft.Control] = []
    if look.ticket and not (look.vip and look.ticket.strip().upper() == t("verdict.vip")):
        badges.append(_chip(look.ticket, bg, fg))
    if look.vip:
        badges.append(_chip(t("verdict.vip"), "#000000", "#FFD700"))
    if look.manual:
        badges.append(_chip(t("verdict.manual"), bg, fg))
    if look.offline:
        badges.append(_chip(t("verdict.offline"), bg, fg))
    column = ft.Column(
        controls=[
            ft.Row(
                controls=[
                    ft.Icon(TONE_ICONS[look.tone], color=fg, size=size),
                    ft.Text(
                        look.word,
                        size=size,
                        max_lines=1,
                        no_wrap=True,
                        weight=ft.FontWeight.W_900,
                        color=fg,
                        key="verdict-word",
                    ),
                ],
                alignment=ft.MainAxisAlignment.CENTER,
                wrap=True,
            ),
            ft.Text(
                look.name or t("verdict.unknown_person"),
                size=NAME_TEXT,
                weight=ft.FontWeight.BOLD,
                color=fg,
                text_align=ft.TextAlign.CENTER,
                key="verdict-name",
            ),
            ft.Row(controls=badges, alignment=ft.MainAxisAlignment.CENTER, wrap=True),
            ft.Text(
                look.reason,
                size=REASON_TEXT,
                color=fg,
                text_align=ft.TextAlign.CENTER,
                key="verdict-reason",
            ),
            ft.Text(t("verdict.tap_to_close"), size=16, color=fg, opacity=0.7),
        ],
        horizontal_alignment=ft.CrossAxisAlignment.CENTER,
        alignment=ft.MainAxisAlignment.CENTER,
        spacing=20,
    )
    return ft.Semantics(
        identifier="verdict",
        label=verdict_label(look),
        live_region=True,
        container=True,
        content=ft.Container(
            content=column,
            bgcolor=bg,
            alignment=ft.Alignment.CENTER,
            padding=ft.Padding.all(24),
            expand=True,
            on_click=on_dismiss,
            data=look.tone.value,
            key="verdict-box",
        ),
    )
