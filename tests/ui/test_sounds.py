"""Three sounds a door can tell apart by ear, in the band a phone's speaker plays."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np

from scanner_app.ui.sound import SOUND_FILES
from scanner_app.ui.viewmodel import Tone

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _samples(name: str) -> tuple[np.ndarray, int]:
    with wave.open(str(ASSETS / name.lstrip("/")), "rb") as w:
        raw = w.readframes(w.getnframes())
        return np.frombuffer(raw, dtype="<i2").astype(float), w.getframerate()


def test_admit_deny_and_attention_are_three_different_sounds() -> None:
    assert set(SOUND_FILES) == set(Tone)
    digests = {
        hashlib.sha256((ASSETS / p.lstrip("/")).read_bytes()).hexdigest()
        for p in SOUND_FILES.values()
    }
    assert len(digests) == 3


def test_each_sound_is_short_loud_and_above_what_phone_speakers_drop() -> None:
    for path in SOUND_FILES.values():
        samples, rate = _samples(path)
        assert len(samples) / rate <= 0.8
        assert np.abs(samples).max() >= 0.5 * 32767
        spectrum = np.abs(np.fft.rfft(samples))
        peak_hz = np.fft.rfftfreq(len(samples), 1 / rate)[int(spectrum.argmax())]
        assert 400 <= peak_hz <= 4000, (path, peak_hz)
