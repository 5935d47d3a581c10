"""The camera-to-gate wiring, once for the app and `doorcheck scan`: a frame source (camera index,
video file or image folder) decoded off the caller's thread, every code submitted to the gate
once (whatever the number of windows listening), and the latest frame kept as JPEG for
previews. A pairing QR shown while the device is not paired goes to the listeners instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from scanner_app.errors import GateError
from scanner_app.frames import Frame, FrameSource
from scanner_app.gate import Gate
from scanner_app.links import is_pairing_uri
from scanner_app.state import CameraListener
from scanner_app.trace import trace, tracing

__all__ = ["CameraFeed", "CameraListener"]

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 640
JPEG_QUALITY = 70


class CameraFeed:
    """`CameraFeed(gate, "0")`, `.subscribe(listener)`, `.start()`, `.jpeg()`, `.stop()`.

    `realtime=False` reads a video file or image folder as fast as it decodes (the command
    line); by default a file plays at its own pace, like a camera (the app).
    """

    def __init__(
        self, gate: Gate, spec: str, *, realtime: bool = True, source: str = "camera"
    ) -> None:
        self.gate = gate
        self.spec = spec
        self.realtime = realtime
        self.source = source
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
            settings=ReaderSettings(realtime=self.realtime),
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

    def wait_done(self, timeout: float | None = None) -> bool:
        """Wait for a finite source to end (True) or `timeout` to pass (False)."""
        reader = self._reader
        return reader is None or bool(reader.done.wait(timeout))

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
        try:  # raw bytes for binary content: the gate rejects them as malformed
            verdict = self.gate.submit(getattr(found, "code", text), source=self.source)
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


def traced_source(inner: FrameSource) -> FrameSource:
    """`inner`, tracing `{"event": "frame", "n": …}` as each frame is read (n counts from 1,
    like `CodeReader.frames_read`)."""

    class TracedSource(FrameSource):
        def __init__(self) -> None:
            self.finite, self.fps, self.name = inner.finite, inner.fps, inner.name
            self._count = 0

        def read(self) -> Frame | None:
            frame = inner.read()
            if frame is not None:
                self._count += 1
                trace("frame", n=self._count)
            return frame

        def close(self) -> None:
            inner.close()

    return TracedSource()
