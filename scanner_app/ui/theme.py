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

OUT_MODE = "#5E35B1"  # the out-mode band: violet, none of the verdicts' colours (white words)
TOUCH = 56  # minimum height of anything tapped at the door
FIELD_TEXT = 20
BIG_WORD = 96
_GLYPH = 0.72  # the widest caps of Roboto Black, as a share of the font size
_MIN_WORD = 28


def word_size(word: str, width: float | None) -> int:
    """The verdict word's size so that the icon and the word fit one line of `width` pixels:
    scaled down on a phone, never broken mid-word ("DENEGADO" at 320 px)."""
    if not width:
        return BIG_WORD
    room = width - 48 - 16  # the overlay's padding, the gap beside the icon
    fitted = room / (_GLYPH * max(1, len(word)) + 1.0)  # the icon is as wide as the font size
    return int(max(_MIN_WORD, min(BIG_WORD, fitted)))


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
    on_verdict: str  # text drawn on the deny colour
    on_admit: str = "#000000"  # text drawn on the admit colour (light: dark text)

    def tone(self, tone: Tone) -> str:
        return {Tone.ADMIT: self.admit, Tone.DENY: self.deny, Tone.WARN: self.warn}[tone]

    def on_tone(self, tone: Tone) -> str:
        if tone is Tone.WARN:
            return "#000000"
        return self.on_admit if tone is Tone.ADMIT else self.on_verdict


def linear_rgb(colour: str) -> tuple[float, float, float]:
    """ "#RRGGBB" as linear-light red, green and blue (0 to 1), as WCAG defines them."""

    def channel(i: int) -> float:
        v = int(colour[i : i + 2], 16) / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return channel(1), channel(3), channel(5)


def luminance(colour: str) -> float:
    """WCAG relative luminance of "#RRGGBB"."""
    r, g, b = linear_rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


_DARK = Palette(
    high_contrast=False,
    background="#121417",
    surface="#1E2228",
    text="#ECEFF1",
    muted="#9AA4AE",
    accent="#4FC3F7",
    admit="#7FE0A0",
    deny="#A31515",
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
    admit="#A6F0BE",
    deny="#8E1212",
    warn="#FFD600",
    on_verdict="#FFFFFF",
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
