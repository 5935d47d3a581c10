"""Small pieces every screen uses: calling a callback, a screen root, a big button."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft

from scanner_app.ui.theme import FIELD_TEXT, TOUCH

__all__ = ["Callback", "big_button", "call", "screen_root", "text_field"]

Callback = Callable[..., Awaitable[None] | None]


async def call(callback: Callback, *args: Any) -> None:
    """Run a view callback, awaiting it when it is a coroutine function."""
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


def screen_root(identifier: str, *controls: ft.Control, scroll: bool = True) -> ft.Semantics:
    """A screen's outer column, tagged for browser tests (`screen-scan`, `screen-search`…)."""
    column = ft.Column(
        controls=list(controls),
        expand=True,
        spacing=16,
        scroll=ft.ScrollMode.AUTO if scroll else None,
        horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
    )
    return ft.Semantics(
        identifier=identifier,
        container=True,
        content=ft.Container(content=column, padding=ft.Padding.all(16), expand=True),
    )


def big_button(
    label: str,
    on_click: Callable[..., Any] | None,
    *,
    icon: ft.IconData | None = None,
    primary: bool = True,
    key: str | None = None,
) -> ft.Button:
    """A touch-sized button: filled for the screen's main action, tonal otherwise."""
    style = ft.ButtonStyle(
        padding=ft.Padding.symmetric(horizontal=24, vertical=16),
        text_style=ft.TextStyle(size=FIELD_TEXT, weight=ft.FontWeight.BOLD),
        shape=ft.RoundedRectangleBorder(radius=12),
    )
    kind = ft.FilledButton if primary else ft.Button
    return kind(content=label, icon=icon, on_click=on_click, height=TOUCH, style=style, key=key)


def text_field(label: str, **kwargs: Any) -> ft.TextField:
    kwargs.setdefault("text_size", FIELD_TEXT)
    kwargs.setdefault("content_padding", ft.Padding.symmetric(horizontal=16, vertical=18))
    return ft.TextField(label=label, **kwargs)
