"""Codes from a frame source, off the caller's thread: frames are read on one thread and decoded
on another, and a code that stays in view is reported once (the read-once rule).

    reader = CodeReader(open_source("0"), Decoder(), on_code=lambda found: gate.submit(found.code))
    reader.start(); ...; reader.stop(); reader.join()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from scanner_app.decoder import Decoded, Decoder
from scanner_app.frames import FrameSource, SourceError

__all__ = ["CodeReader", "ReaderSettings", "SeenCodes"]

log = logging.getLogger(__name__)

Frame = np.ndarray[Any, np.dtype[np.uint8]]


@dataclass(frozen=True)
class ReaderSettings:
    """How a CodeReader paces itself.

    A code is read again only after it was out of view for more than `gone_frames` frames (a
    finite source: counted in frames, so a test is exact) or `gone_seconds` (a live camera).
    `preview_fps` caps `on_frame` calls (None: every frame). `realtime` plays a finite source
    at its own frame rate instead of as fast as it decodes. A camera that fails
    `max_failed_reads` reads in a row is given up (`error`).
    """

    gone_frames: int = 10
    gone_seconds: float = 1.0
    preview_fps: float | None = 15.0
    realtime: bool = False
    max_failed_reads: int = 50


class SeenCodes:
    """The read-once rule. `seen.sighting(text, at)` is True when the code appears (first seen,
    or not seen for more than `gone_after`), False while it stays in view. `at` is a frame
    number or a time in seconds, always increasing."""

    def __init__(self, gone_after: float) -> None:
        self.gone_after = gone_after
        self._last: dict[str, float] = {}

    def sighting(self, text: str, at: float) -> bool:
        last = self._last.get(text)
        self._last[text] = at
        if len(self._last) > 256:
            self._forget_before(at)
        return last is None or at - last > self.gone_after

    def _forget_before(self, now: float) -> None:
        self._last = {t: at for t, at in self._last.items() if now - at <= self.gone_after}


class _Handoff:
    """The next frame for the decoding thread. A live camera replaces a frame the decoder has
    not taken yet (it is skipped: the decoder never falls behind the camera); a finite source
    waits until the decoder took it (no frame of a file is skipped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[int, float, Frame] | None = None
        self._closed = False

    def put(self, item: tuple[int, float, Frame], *, wait: bool) -> bool:
        """Hand over a frame; True when it replaced one the decoder never took."""
        with self._cond:
            while wait and self._item is not None and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            replaced = self._item is not None
            self._item = item
            self._cond.notify_all()
            return replaced

    def take(self) -> tuple[int, float, Frame] | None:
        """The next frame, waiting for it; None once closed and drained."""
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self, *, drop: bool = False) -> None:
        with self._cond:
            self._closed = True
            if drop:
                self._item = None
            self._cond.notify_all()


class CodeReader:
    """Reads frames from `source` on a thread, decodes them on another and calls `on_code` once
    per appearance of a code (see ReaderSettings), `on_frame` with frames for a preview.

    Callbacks run on the reader's threads. `done` is set when the reader has finished: the
    finite source ended, `stop()` was called, or something failed (`error`). The reader closes
    the source when it is finished.
    """

    def __init__(
        self,
        source: FrameSource,
        decoder: Decoder,
        on_code: Callable[[Decoded], None],
        on_frame: Callable[[Frame], None] | None = None,
        *,
        settings: ReaderSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.decoder = decoder
        self.on_code = on_code
        self.on_frame = on_frame
        self.settings = settings or ReaderSettings()
        self._clock = clock
        gone_after = self.settings.gone_frames if source.finite else self.settings.gone_seconds
        self._seen = SeenCodes(gone_after)
        self._handoff = _Handoff()
        self._stopping = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.frames_read = 0
        self.frames_decoded = 0
        self.frames_skipped = 0
        self.codes_read = 0
        self._last_preview: float | None = None
        self._capture = threading.Thread(target=self._capture_loop, name="frames", daemon=True)
        self._decode = threading.Thread(target=self._decode_loop, name="decoder", daemon=True)
        self._started = False

    # -- control -------------------------------------------------------------------------------
    def start(self) -> CodeReader:
        if self._started:
            raise RuntimeError("a CodeReader starts once")
        self._started = True
        self._capture.start()
        self._decode.start()
        return self

    def stop(self) -> None:
        """Stop reading (frames not yet decoded are dropped); returns without waiting."""
        self._stopping.set()
        self._handoff.close(drop=True)
        if not self._started:
            self.done.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the reader to finish; True when it did within `timeout`."""
        if not self._started:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._capture, self._decode):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not (self._capture.is_alive() or self._decode.is_alive())

    @property
    def running(self) -> bool:
        return self._started and not self.done.is_set()

    def __enter__(self) -> CodeReader:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.join()

    # -- threads -------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        try:
            self._capture_frames()
        except Exception as exc:  # the thread's boundary: kept in `error`, not lost
            self._fail(exc)
        finally:
            self._handoff.close()
            self.source.close()

    def _capture_frames(self) -> None:
        finite, failed = self.source.finite, 0
        pace = self._pace()
        while not self._stopping.is_set():
            frame = self.source.read()
            if frame is None:
                if finite:
                    return
                failed += 1
                if failed >= self.settings.max_failed_reads:
                    raise SourceError(f"{self.source.name} stopped delivering frames")
                self._stopping.wait(0.02)
                continue
            failed = 0
            self.frames_read += 1
            now = self._clock()
            self._preview(frame, now)
            if self._handoff.put((self.frames_read, now, frame), wait=finite):
                self.frames_skipped += 1
            if pace:
                self._stopping.wait(pace)

    def _pace(self) -> float:
        if self.settings.realtime and self.source.finite and self.source.fps:
            return 1.0 / self.source.fps
        return 0.0

    def _preview(self, frame: Frame, now: float) -> None:
        if self.on_frame is None:
            return
        fps = self.settings.preview_fps
        if fps and self._last_preview is not None and now - self._last_preview < 1.0 / fps:
            return
        self._last_preview = now
        self.on_frame(frame)

    def _decode_loop(self) -> None:
        try:
            while (item := self._handoff.take()) is not None:
                number, seen_at, frame = item
                found = self.decoder.decode(frame)
                self.frames_decoded += 1
                at = float(number) if self.source.finite else seen_at
                for code in found:
                    if self._seen.sighting(code.text, at) and not self._stopping.is_set():
                        self.codes_read += 1
                        self.on_code(code)
        except Exception as exc:  # the thread's boundary: kept in `error`, not lost
            self._fail(exc)
        finally:
            self._capture.join()
            self.done.set()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if isinstance(exc, SourceError):
            log.warning("%s", exc)
        else:
            log.exception("code reader stopped: %s", exc)
        self._stopping.set()
        self._handoff.close(drop=True)
