"""Where the scanner's frames come from: a camera, a video file or a folder of images, behind one
small interface. `open_source("0")`, `open_source("door.avi")`, `open_source("shots/")`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "CameraSource",
    "FrameSource",
    "ImageFolderSource",
    "SourceError",
    "VideoFileSource",
    "open_source",
    "read_image",
    "write_video",
]

log = logging.getLogger(__name__)

Frame = np.ndarray[Any, np.dtype[np.uint8]]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}
)


class SourceError(Exception):
    """A frame source that cannot be opened; the message is one line for the user."""


class FrameSource(ABC):
    """Frames in BGR (`uint8`, height x width x 3). `read()` returns None when a finite source
    is finished, or when a live camera failed to deliver one frame (it may deliver the next).

        with open_source("shots/") as source:
            while (frame := source.read()) is not None: ...
    """

    #: True for a video file or an image folder: the source ends, and no frame may be dropped.
    finite: bool = False
    #: Frames per second the source delivers (a hint; None when unknown).
    fps: float | None = None
    #: What the source is, for messages: "camera 0", "door.avi", "shots/".
    name: str = ""

    @abstractmethod
    def read(self) -> Frame | None: ...

    def close(self) -> None:  # noqa: B027 - sources without resources need not override it
        """Release the camera or file; reading after close returns None."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _CaptureSource(FrameSource):
    """A source read through `cv2.VideoCapture` (cameras and video files)."""

    def __init__(self, capture: Any, name: str) -> None:
        self._capture = capture
        self.name = name
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None

    def read(self) -> Frame | None:
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return _as_bgr(frame)

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class CameraSource(_CaptureSource):
    """A live camera by OpenCV index: `CameraSource(0)`. Never finite."""

    finite = False

    def __init__(self, index: int) -> None:
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"camera {index} cannot be opened (is it connected and free?)")
        super().__init__(capture, f"camera {index}")


class VideoFileSource(_CaptureSource):
    """A video file, read frame by frame to its end: `VideoFileSource(Path("door.avi"))`."""

    finite = True

    def __init__(self, path: Path) -> None:
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{path} cannot be read as a video")
        super().__init__(capture, str(path))


class ImageFolderSource(FrameSource):
    """Every image in a folder, in sorted name order; a file that does not decode is skipped
    with a warning (and listed in `skipped`). Files without an image suffix are ignored."""

    finite = True

    def __init__(self, folder: Path) -> None:
        self.name = str(folder)
        self._files = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: p.name,
        )
        if not self._files:
            raise SourceError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._next = 0
        self.skipped: list[Path] = []

    @property
    def files(self) -> list[Path]:
        """The image files in the order they are read."""
        return list(self._files)

    def read(self) -> Frame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            frame = read_image(path)
            if frame is not None:
                return frame
            self.skipped.append(path)
            log.warning("skipped %s: not a readable image", path)
        return None

    def close(self) -> None:
        self._next = len(self._files)


def read_image(path: Path) -> Frame | None:
    """An image file as a BGR frame, or None when it is missing or does not decode."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if frame is None else _as_bgr(frame)


def open_source(spec: str | int | Path) -> FrameSource:
    """A frame source from what the user typed: a camera index (`0`, `"1"`), a video file or a
    folder of images. Raises SourceError with a one-line message when it cannot be opened."""
    if isinstance(spec, bool):
        raise SourceError(f"not a camera index, video file or image folder: {spec!r}")
    if isinstance(spec, int):
        return CameraSource(spec)
    if isinstance(spec, str) and spec.strip().isascii() and spec.strip().isdigit():
        return CameraSource(int(spec.strip()))
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"no such camera, video file or image folder: {spec}")
    if path.is_dir():
        return ImageFolderSource(path)
    return VideoFileSource(path)


def write_video(path: Path, frames: Iterable[Frame], *, fps: float = 10.0) -> Path:
    """Write BGR frames (all the same size) to an MJPG `.avi` that `open_source` can play back."""
    writer: Any = None
    size: tuple[int, int] | None = None
    count = 0
    try:
        for frame in frames:
            bgr = _as_bgr(frame)
            height, width = bgr.shape[:2]
            if writer is None:
                size = (width, height)
                fourcc = cv2.VideoWriter.fourcc(*"MJPG")
                writer = cv2.VideoWriter(str(path), fourcc, fps, size)
                if not writer.isOpened():
                    raise SourceError(f"cannot write a video to {path}")
            elif (width, height) != size:
                raise ValueError(f"frame {count} is {width}x{height}, the video is {size}")
            writer.write(bgr)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise ValueError("write_video needs at least one frame")
    return path


def _as_bgr(frame: np.ndarray[Any, Any]) -> Frame:
    """Grayscale and BGRA frames as BGR, so every source delivers the same layout."""
    if frame.ndim == 2:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    return np.asarray(frame, dtype=np.uint8)
