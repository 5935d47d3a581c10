"""Three sounds (`assets/sounds/*.wav`): admit, deny, and attention (three short high beeps: a
warning or a code read twice with no verdict on record), through flet-audio when it is
installed; silent otherwise, so the app never fails for want of a speaker."""

from __future__ import annotations

import logging
from typing import Any

from scanner_app.ui.viewmodel import Tone

__all__ = ["Sounds"]

log = logging.getLogger(__name__)

SOUND_FILES = {
    Tone.ADMIT: "/sounds/accept.wav",
    Tone.DENY: "/sounds/deny.wav",
    Tone.WARN: "/sounds/attention.wav",
}


class Sounds:
    """Create inside the page's `main` (services register with the current page)."""

    def __init__(self, enabled: bool = True) -> None:
        self._players: dict[Tone, Any] = {}
        if not enabled:
            return
        try:
            import flet_audio  # type: ignore[import-untyped]
        except ImportError:
            log.info("flet-audio is not installed: verdicts are silent")
            return
        for tone, src in SOUND_FILES.items():
            self._players[tone] = flet_audio.Audio(src=src, volume=1.0)

    @property
    def available(self) -> bool:
        return bool(self._players)

    async def play(self, tone: Tone) -> None:
        player = self._players.get(tone)
        if player is None:
            return
        try:
            await player.play()
        except (RuntimeError, TimeoutError) as exc:  # no audio device, or the tab went away
            log.info("sound not played: %s", exc)
