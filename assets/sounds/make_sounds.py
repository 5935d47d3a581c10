"""Writes the door's three sounds (`python assets/sounds/make_sounds.py`): loud, short, and
pitched where a phone's small speaker still plays (400 Hz to 4 kHz).

- accept.wav: two rising notes (C6, G6), bright;
- deny.wav: a low buzz (B♭4 with odd harmonics, a square-ish tone), long;
- attention.wav: three short high beeps (B5): look at the screen.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 22050
HERE = Path(__file__).resolve().parent


def _notes(parts: list[tuple[float, float]], harmonics: tuple[float, ...]) -> list[int]:
    frames: list[int] = []
    norm = sum(harmonics)
    for freq, seconds in parts:
        n = int(RATE * seconds)
        for i in range(n):
            envelope = min(1.0, i / (RATE * 0.004), (n - i) / (RATE * 0.012))  # no clicks
            value = 0.0
            if freq:
                value = sum(
                    h * math.sin(2 * math.pi * freq * (2 * k + 1) * i / RATE)
                    for k, h in enumerate(harmonics)
                )
            frames.append(int(0.92 * 32767 * envelope * value / norm))
    return frames


def _write(name: str, frames: list[int]) -> None:
    with wave.open(str(HERE / name), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(struct.pack("<h", f) for f in frames))


if __name__ == "__main__":
    _write("accept.wav", _notes([(1047, 0.11), (1568, 0.16)], (1.0, 0.15)))
    _write("deny.wav", _notes([(466, 0.45)], (1.0, 0.33, 0.2)))
    _write("attention.wav", _notes([(988, 0.08), (0, 0.06)] * 2 + [(988, 0.08)], (1.0, 0.2)))
