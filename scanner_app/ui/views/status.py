"""The status bar under every screen: connection, uploads, last sync, occupancy, counts."""

from __future__ import annotations

import flet as ft

from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import Palette
from scanner_app.ui.viewmodel import StatusLook

__all__ = ["status_bar"]


def _badge(text: str, icon: ft.IconData, fg: str, bg: str, key: str) -> ft.Container:
    return ft.Container(
        content=ft.Row(
            controls=[ft.Icon(icon, color=fg, size=20), ft.Text(text, color=fg, size=16)],
            spacing=6,
            tight=True,
        ),
        bgcolor=bg,
        padding=ft.Padding.symmetric(horizontal=12, vertical=6),
        border_radius=ft.BorderRadius.all(20),
        key=key,
    )


def status_bar(look: StatusLook, colours: Palette, t: Texts) -> ft.Semantics:
    """One row; the offline badge is its own semantics node (`offline-badge`)."""
    if look.online:
        connection: ft.Control = _badge(
            look.connection, ft.Icons.CLOUD_DONE, colours.on_admit, colours.admit, "online-badge"
        )
    else:
        connection = ft.Semantics(
            identifier="offline-badge",
            label=look.connection,
            content=_badge(
                look.connection, ft.Icons.CLOUD_OFF, "#FFFFFF", colours.deny, "offline-badge"
            ),
        )
    pending_colour = colours.warn if look.pending else colours.muted
    items: list[ft.Control] = [
        connection,
        _badge(
            look.pending_text,
            ft.Icons.CLOUD_UPLOAD if look.pending else ft.Icons.CHECK,
            "#000000" if look.pending else colours.text,
            pending_colour if look.pending else colours.surface,
            "pending-badge",
        ),
        ft.Text(look.last_sync, color=colours.muted, size=16, key="last-sync"),
    ]
    if look.occupancy is not None:
        occupancy: list[ft.Control] = [
            ft.Text(look.occupancy, color=colours.text, size=16, key="occupancy")
        ]
        if look.fraction is not None:
            bar = ft.ProgressBar(
                value=look.fraction,
                width=140,
                bar_height=10,
                color=colours.tone(look.occupancy_tone),
                bgcolor=colours.surface,
                border_radius=ft.BorderRadius.all(5),
            )
            # Excluded: a progress bar's own semantics node would swallow the bar's identifier.
            occupancy.append(ft.Semantics(content=bar, exclude_semantics=True))
        items.append(ft.Row(controls=occupancy, spacing=8, tight=True))
    if look.counts:
        items.append(ft.Text(look.counts, color=colours.muted, size=16, key="counts"))
    label = " · ".join(
        p for p in (look.connection, look.pending_text, look.last_sync, look.occupancy) if p
    )
    return ft.Semantics(
        identifier="status",
        label=label,
        container=True,
        content=ft.Container(
            content=ft.Row(
                controls=items,
                wrap=True,
                spacing=16,
                run_spacing=8,
                vertical_alignment=ft.CrossAxisAlignment.CENTER,
            ),
            bgcolor=colours.surface,
            padding=ft.Padding.symmetric(horizontal=16, vertical=8),
            border=ft.Border.only(top=ft.BorderSide(1, colours.muted))
            if colours.high_contrast
            else None,
        ),
    )
