"""Verdict colours readable by everyone: admit and deny differ in luminance as well as hue, also
for a deuteranope (the most common colour blindness), and their words keep WCAG AA contrast."""

from __future__ import annotations

import pytest

from scanner_app.ui.theme import Palette, contrast, linear_rgb, luminance, palette
from scanner_app.ui.viewmodel import Tone

# Machado, Oliveira and Fernandes (2009), deuteranopia at severity 1.0, on linear RGB
DEUTERANOPIA = (
    (0.367322, 0.860646, -0.227968),
    (0.280085, 0.672501, 0.047413),
    (-0.011820, 0.042940, 0.968881),
)


def _as_deuteranope(colour: str) -> float:
    """The relative luminance a deuteranope sees."""
    r, g, b = linear_rgb(colour)
    sim = [min(1.0, max(0.0, m[0] * r + m[1] * g + m[2] * b)) for m in DEUTERANOPIA]
    return 0.2126 * sim[0] + 0.7152 * sim[1] + 0.0722 * sim[2]


@pytest.mark.parametrize("colours", [palette(False), palette(True)], ids=["dark", "contrast"])
def test_admit_and_deny_differ_in_luminance_for_everyone(colours: Palette) -> None:
    assert contrast(colours.admit, colours.deny) >= 3.0
    seen = sorted((_as_deuteranope(colours.admit), _as_deuteranope(colours.deny)), reverse=True)
    assert (seen[0] + 0.05) / (seen[1] + 0.05) >= 3.0
    assert luminance(colours.admit) > luminance(colours.deny)  # light admit, dark deny


@pytest.mark.parametrize("colours", [palette(False), palette(True)], ids=["dark", "contrast"])
def test_every_verdict_word_is_readable_on_its_colour(colours: Palette) -> None:
    for tone in Tone:
        assert contrast(colours.tone(tone), colours.on_tone(tone)) >= 4.5, tone


def test_the_old_palette_would_fail() -> None:
    """The colours before this change (issue 18 measured a luminance ratio of 1.23)."""
    assert contrast("#1B873F", "#C62828") < 1.3


def test_the_verdict_word_fits_one_line_on_a_phone_in_every_language() -> None:
    from scanner_app.ui.i18n import texts
    from scanner_app.ui.theme import BIG_WORD, word_size

    for lang in ("en", "es"):
        t = texts(lang)
        for key in ("verdict.admit", "verdict.deny", "verdict.check", "verdict.exit"):
            word = t(key)
            assert word_size(word, 1280) == BIG_WORD
            for width in (320, 390):
                size = word_size(word, width)
                assert size * (0.72 * len(word) + 1.0) <= width - 64, (word, width, size)
                assert size >= 28
