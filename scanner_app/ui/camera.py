"""One camera per process, shared by every open window: it decodes codes, submits them to the
gate (once, whatever the number of windows) and keeps the latest frame as JPEG for previews.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanner_app.state import GateVerdict
from scanner_app.ui.port import GateLike
from scanner_app.ui.trace import trace, traced_source, tracing
from scanner_app.ui.viewmodel import is_pairing_uri

__all__ = ["CameraHub", "CameraListener"]

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 640
JPEG_QUALITY = 70


@dataclass(frozen=True, slots=True)
class CameraListener:
    """What a window wants from the camera (called on the camera's thread)."""

    verdict: Callable[[GateVerdict], None]
    pairing: Callable[[str], None]  # a pairing QR was shown while the device is not paired
    problem: Callable[[str], None]  # the camera stopped or failed


class CameraHub:
    """`CameraHub(gate, "0")`, `.subscribe(listener)`, `.start()`, `.jpeg()`, `.stop()`."""

    def __init__(self, gate: GateLike, spec: str) -> None:
        self.gate = gate
        self.spec = spec
        self._lock = threading.Lock()
        self._listeners: list[CameraListener] = []
        self._frame: Any = None
        self._frame_seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = -1
        self._reader: Any = None
        self._started = False
        self.problem: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source and start decoding, once (the first window showing the pairing or the
        scan screen calls it; pairing `reset`s it, so a video file plays from its start on the
        scan screen). Blocking: call off the loop. A failure is kept in `problem` and told to the
        listeners, not raised."""
        from scanner_app.decoder import Decoder
        from scanner_app.frames import SourceError, open_source
        from scanner_app.reader import CodeReader, ReaderSettings

        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            frames = open_source(self.spec)
        except SourceError as exc:
            self._fail(str(exc))
            return
        if tracing():
            frames = traced_source(frames)
        reader = CodeReader(
            frames,
            Decoder(),
            on_code=self._on_code,
            on_frame=self._on_frame,
            settings=ReaderSettings(realtime=True),  # a video file plays like a camera
        )
        self._reader = reader
        reader.start()
        threading.Thread(
            target=self._watch, args=(reader,), name="camera-watch", daemon=True
        ).start()

    def _watch(self, reader: Any) -> None:
        reader.done.wait()
        if reader.error is not None and self._reader is reader:
            self._fail(str(reader.error))

    def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop()  # the reader closes its source
            reader.join(timeout=5)

    def reset(self) -> None:
        """Stop, so that the next `start` opens the source afresh (after pairing)."""
        self.stop()
        with self._lock:
            self._started = False
            self.problem = None

    def subscribe(self, listener: CameraListener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    # -- frames --------------------------------------------------------------------------------
    @property
    def frame_seq(self) -> int:
        return self._frame_seq

    def _on_frame(self, frame: Any) -> None:
        with self._lock:
            self._frame = frame
            self._frame_seq += 1

    def jpeg(self) -> tuple[int, bytes | None]:
        """The latest frame as JPEG (encoded once per frame, whoever asks first); blocking."""
        with self._lock:
            seq, frame = self._frame_seq, self._frame
            if seq == self._jpeg_seq:
                return seq, self._jpeg
        data = _encode(frame) if frame is not None else None
        with self._lock:
            if seq > self._jpeg_seq:
                self._jpeg, self._jpeg_seq = data, seq
        return seq, data

    # -- codes ---------------------------------------------------------------------------------
    def _on_code(self, found: Any) -> None:
        decoded_at = time.time()
        text = getattr(found, "text", found)
        if not isinstance(text, str):
            return
        listeners = self._snapshot()
        if is_pairing_uri(text) and not self.gate.paired:
            for listener in listeners:
                listener.pairing(text)
            return
        if self.gate.config is None:
            return  # nothing to check against yet: the window shows the setup screen
        from scanner_app.gate import GateError

        try:  # raw bytes for binary content: the gate rejects them as malformed
            verdict = self.gate.submit(getattr(found, "code", text), source="camera")
        except GateError as exc:
            log.warning("camera code not checked: %s", exc)
            return
        if tracing():
            name = verdict.attendee.name if verdict.attendee else ""
            trace("camera_verdict", decoded_at=decoded_at, name=name)
        for listener in listeners:
            listener.verdict(verdict)

    def _fail(self, message: str) -> None:
        self.problem = message
        for listener in self._snapshot():
            listener.problem(message)

    def _snapshot(self) -> list[CameraListener]:
        with self._lock:
            return list(self._listeners)


def _encode(frame: Any) -> bytes | None:
    import cv2

    height, width = frame.shape[:2]
    if width > PREVIEW_WIDTH:
        frame = cv2.resize(
            frame,
            (PREVIEW_WIDTH, int(height * PREVIEW_WIDTH / width)),
            interpolation=cv2.INTER_AREA,
        )
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return bytes(buffer) if ok else None
