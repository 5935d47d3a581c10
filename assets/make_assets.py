"""Regenerate the scanner app's assets: `python assets/make_assets.py`.

- `icon.png` (and `favicon.png` for web mode): a 512 px app icon, a green check inside a
  QR-like frame, drawn with OpenCV.
- `sounds/accept.wav`, `sounds/deny.wav`: short tones written with the standard `wave` module
  (a rising two-note chime to admit, a low double buzz to deny).
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
RATE = 22_050


def tone(freq: float, seconds: float, *, volume: float = 0.6, square: bool = False) -> list[int]:
    """16-bit samples of one note with a short fade in and out (no clicks)."""
    count = int(RATE * seconds)
    fade = max(1, int(RATE * 0.01))
    samples = []
    for i in range(count):
        wave_value = math.sin(2 * math.pi * freq * i / RATE)
        if square:
            wave_value = 0.6 if wave_value >= 0 else -0.6
        envelope = min(1.0, i / fade, (count - i) / fade)
        samples.append(int(32767 * volume * envelope * wave_value))
    return samples


def silence(seconds: float) -> list[int]:
    return [0] * int(RATE * seconds)


def write_wav(path: Path, samples: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def write_icon(path: Path, size: int = 512) -> None:
    import cv2
    import numpy as np

    img = np.zeros((size, size, 4), dtype=np.uint8)
    dark, green, white = (0x17, 0x14, 0x12, 255), (0x3F, 0x87, 0x1B, 255), (255, 255, 255, 255)
    cv2.rectangle(img, (16, 16), (size - 16, size - 16), dark, thickness=-1)
    # three finder-pattern squares, as on a QR code
    for x, y in ((56, 56), (size - 176, 56), (56, size - 176)):
        cv2.rectangle(img, (x, y), (x + 120, y + 120), white, thickness=18)
        cv2.rectangle(img, (x + 38, y + 38), (x + 82, y + 82), white, thickness=-1)
    # the check mark of an admitted ticket
    points = np.array([[200, 350], [270, 420], [440, 250]], dtype=np.int32)
    cv2.polylines(img, [points], isClosed=False, color=green, thickness=44, lineType=cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def main() -> None:
    write_wav(HERE / "sounds" / "accept.wav", tone(880, 0.12) + tone(1318.5, 0.2))
    deny = tone(220, 0.16, square=True) + silence(0.05) + tone(220, 0.22, square=True)
    write_wav(HERE / "sounds" / "deny.wav", deny)
    write_icon(HERE / "icon.png")
    write_icon(HERE / "favicon.png")  # the browser tab's icon in web mode


if __name__ == "__main__":
    main()
