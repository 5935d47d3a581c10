"""Colours, icons and sizes of the scanner app: dark by default, a high-contrast variant,
touch targets large enough for gloved thumbs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import flet as ft

from scanner_app.ui.viewmodel import Tone

__all__ = ["TONE_ICONS", "Palette", "apply_theme", "palette"]

TOUCH = 56  # minimum height of anything tapped at the door
FIELD_TEXT = 20
BIG_WORD = 96
NAME_TEXT = 40
REASON_TEXT = 28

TONE_ICONS: Mapping[Tone, ft.IconData] = MappingProxyType(
    {Tone.ADMIT: ft.Icons.CHECK_CIRCLE, Tone.DENY: ft.Icons.CANCEL, Tone.WARN: ft.Icons.ERROR}
)


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours one theme variant uses; verdict colours never depend on the variant's hue."""

    high_contrast: bool
    background: str
    surface: str
    text: str
    muted: str
    accent: str
    admit: str
    deny: str
    warn: str
    on_verdict: str  # text drawn on a verdict colour

    def tone(self, tone: Tone) -> str:
        return {Tone.ADMIT: self.admit, Tone.DENY: self.deny, Tone.WARN: self.warn}[tone]

    def on_tone(self, tone: Tone) -> str:
        return "#000000" if tone is Tone.WARN else self.on_verdict


_DARK = Palette(
    high_contrast=False,
    background="#121417",
    surface="#1E2228",
    text="#ECEFF1",
    muted="#9AA4AE",
    accent="#4FC3F7",
    admit="#1B873F",
    deny="#C62828",
    warn="#FFB300",
    on_verdict="#FFFFFF",
)
_HIGH_CONTRAST = Palette(
    high_contrast=True,
    background="#000000",
    surface="#000000",
    text="#FFFFFF",
    muted="#FFFFFF",
    accent="#FFFF00",
    admit="#00C853",
    deny="#FF1744",
    warn="#FFD600",
    on_verdict="#000000",
)


def palette(high_contrast: bool = False) -> Palette:
    return _HIGH_CONTRAST if high_contrast else _DARK


def apply_theme(page: ft.Page, colours: Palette) -> None:
    """Dark Material theme with large controls; called again when contrast is switched."""
    scheme = ft.ColorScheme(
        primary=colours.accent,
        on_primary="#000000",
        surface=colours.background,
        on_surface=colours.text,
        on_surface_variant=colours.muted,
        error=colours.deny,
        outline=colours.text if colours.high_contrast else colours.muted,
    )
    theme = ft.Theme(
        color_scheme=scheme,
        scaffold_bgcolor=colours.background,
        visual_density=ft.VisualDensity.COMFORTABLE,
    )
    page.theme_mode = ft.ThemeMode.DARK
    page.theme = theme
    page.dark_theme = theme
    page.bgcolor = colours.background
