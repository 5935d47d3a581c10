"""QR codes in camera frames: a chain of decoding engines (a region-of-interest pass around the
last hit, zxing-cpp, zbar) that stops at the first engine that reads something.

    decoder = Decoder()
    for found in decoder.decode(frame):
        gate.submit(found.code)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

__all__ = ["DEFAULT_ENGINES", "ENGINES", "Decoded", "Decoder", "Rect", "available_engines"]

log = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # x, y, width, height in frame pixels
Gray = np.ndarray[Any, np.dtype[np.uint8]]
# Maps a box (x0, y0, x1, y1) in the image an engine read back to a Rect in the frame.
_Mapping = Callable[[float, float, float, float], Rect]

ENGINES = ("roi", "zxing", "zbar")
DEFAULT_ENGINES = ENGINES

# Adaptive threshold for low-contrast and glare frames: mean of a 31 px window minus 5.
_THRESHOLD_BLOCK = 31
_THRESHOLD_C = 5
# Region of interest: the last hit's box grown by this share of its side on every side; crops
# whose longer side is under _ROI_UPSCALE_BELOW px are enlarged 2x (small codes gain pixels).
_ROI_MARGIN = 0.5
_ROI_UPSCALE_BELOW = 320
# A QR code (version 1) is 21 modules wide: a smaller image cannot hold one.
_SMALLEST_CODE = 21


@dataclass(frozen=True)
class Decoded:
    """One code read in a frame, and which engine read it.

    `text` is the code's text; binary content (bytes that are not UTF-8 text) shows with U+FFFD
    for the undecodable bytes and keeps its bytes in `raw`. Hand the gate `code`: the text, or
    the raw bytes of binary content, which the gate refuses as `malformed_code`.
    """

    text: str
    engine: str
    rect: Rect | None = None
    raw: bytes | None = None

    @property
    def binary(self) -> bool:
        return self.raw is not None

    @property
    def code(self) -> str | bytes:
        return self.raw if self.raw is not None else self.text


# --- the engines' libraries, loaded once --------------------------------------------------------

_modules: dict[str, Any] = {}
_missing: dict[str, str] = {}
_loading = threading.Lock()


def _library(name: str) -> Any | None:
    """The module "zbar" or "zxing" needs, or None when it cannot be loaded (said once, in the
    log: a machine without libzbar0 reads with zxing-cpp alone)."""
    with _loading:
        if name in _modules:
            return _modules[name]
        if name in _missing:
            return None
        try:
            if name == "zbar":
                from pyzbar import pyzbar as module
            else:
                import zxingcpp as module
        except (ImportError, OSError) as exc:
            _missing[name] = f"{exc.__class__.__name__}: {exc}"
            log.warning(
                "QR engine %s is not available (%s); decoding without it", name, _missing[name]
            )
            return None
        _modules[name] = module
        return module


def _library_of(engine: str) -> str:
    return "zbar" if engine == "zbar" else "zxing"


def available_engines() -> tuple[str, ...]:
    """The engines that can run here, in chain order: `("roi", "zxing", "zbar")` when libzbar
    and zxing-cpp both load."""
    return tuple(e for e in ENGINES if _library(_library_of(e)) is not None)


# --- one frame, shared by the engines -----------------------------------------------------------


class _Frame:
    """A frame's grayscale image and what the engines learn about it while reading it."""

    def __init__(self, gray: Gray) -> None:
        self.gray = gray
        self._threshold: Gray | None = None
        #: Symbols zxing located but could not decode (None: zxing did not look at the frame).
        self.candidates: int | None = None

    @property
    def threshold(self) -> Gray:
        if self._threshold is None:
            self._threshold = _adaptive_threshold(self.gray)
        return self._threshold


def _adaptive_threshold(gray: Gray) -> Gray:
    binary = cv2.adaptiveThreshold(
        gray,
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY,
        _THRESHOLD_BLOCK,
        _THRESHOLD_C,
    )
    return np.asarray(binary, dtype=np.uint8)


def _check_frame(frame: np.ndarray[Any, Any]) -> None:
    if frame.dtype != np.uint8:
        raise ValueError(f"a frame must be an 8-bit image, not {frame.dtype}")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))):
        raise ValueError(f"a frame must be BGR, BGRA or grayscale, not shape {frame.shape}")


def _to_gray(frame: np.ndarray[Any, Any]) -> Gray:
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.shape[2] == 1:
        return np.ascontiguousarray(frame[:, :, 0])
    code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    return np.asarray(cv2.cvtColor(frame, code), dtype=np.uint8)


def _text_of(raw: bytes) -> tuple[str, bytes | None]:
    """UTF-8 text, or (text with U+FFFD, the raw bytes) for binary content."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), raw


# --- zxing-cpp ----------------------------------------------------------------------------------


def _zxing_read(zx: Any, image: Gray, *, fixed: bool = False, errors: bool = False) -> list[Any]:
    """zxing-cpp restricted to QR codes. Rotation search is off: a QR code's finder patterns
    already give its orientation, and the 90° retries only cost time. Inverted (dark mode) codes
    are searched for. `fixed` reads an already binarized image as it is."""
    return list(
        zx.read_barcodes(
            image,
            formats=zx.BarcodeFormat.QRCode,
            try_rotate=False,
            try_invert=True,
            text_mode=zx.TextMode.Plain,
            binarizer=zx.Binarizer.FixedThreshold if fixed else zx.Binarizer.LocalAverage,
            return_errors=errors,
        )
    )


def _from_zxing(zx: Any, barcode: Any, engine: str, to_frame: _Mapping) -> Decoded:
    if barcode.content_type == zx.ContentType.Text:
        # zxing applied the code's character set (ECI, ISO-8859-1, Shift_JIS) to its bytes.
        text, raw = str(barcode.text), None
    else:
        text, raw = _text_of(bytes(barcode.bytes))
    p = barcode.position
    xs = (p.top_left.x, p.top_right.x, p.bottom_right.x, p.bottom_left.x)
    ys = (p.top_left.y, p.top_right.y, p.bottom_right.y, p.bottom_left.y)
    return Decoded(text, engine, to_frame(min(xs), min(ys), max(xs), max(ys)), raw)


def _identity(x0: float, y0: float, x1: float, y1: float) -> Rect:
    return int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1


class _Engine(Protocol):
    name: str

    def read(self, frame: _Frame) -> list[Decoded]: ...


class _Zxing:
    """zxing-cpp on the frame; when it reads nothing, once more on the adaptive-threshold image
    (low-contrast and glare codes, ~3 ms). Notes how many symbols it located but could not
    decode: zbar only runs on a frame where zxing saw one."""

    name = "zxing"

    def __init__(self, zx: Any) -> None:
        self._zx = zx

    def read(self, frame: _Frame) -> list[Decoded]:
        results = _zxing_read(self._zx, frame.gray, errors=True)
        found = [_from_zxing(self._zx, b, self.name, _identity) for b in results if b.valid]
        frame.candidates = len(results) - len(found)
        if found:
            return found
        results = _zxing_read(self._zx, frame.threshold, fixed=True)
        return [_from_zxing(self._zx, b, self.name, _identity) for b in results if b.valid]


class _Roi:
    """zxing-cpp on a crop around where the last code was, enlarged when small: a code that stays
    in view is read from a few hundred pixels instead of the whole frame."""

    name = "roi"

    def __init__(self, zx: Any) -> None:
        self._zx = zx
        self.rect: Rect | None = None

    def read(self, frame: _Frame) -> list[Decoded]:
        if self.rect is None:
            return []
        height, width = frame.gray.shape[:2]
        x, y, w, h = self.rect
        margin = int(max(w, h) * _ROI_MARGIN) + 8
        x0, y0 = max(0, x - margin), max(0, y - margin)
        x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        crop: Gray = frame.gray[y0:y1, x0:x1]
        scale = 2.0 if max(x1 - x0, y1 - y0) < _ROI_UPSCALE_BELOW else 1.0
        if scale != 1.0:
            crop = np.asarray(
                cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR),
                dtype=np.uint8,
            )
        crop = np.ascontiguousarray(crop)

        def to_frame(cx0: float, cy0: float, cx1: float, cy1: float) -> Rect:
            return _identity(x0 + cx0 / scale, y0 + cy0 / scale, x0 + cx1 / scale, y0 + cy1 / scale)

        results = _zxing_read(self._zx, crop)
        return [_from_zxing(self._zx, b, self.name, to_frame) for b in results if b.valid]


class _Zbar:
    """pyzbar (libzbar) on the grayscale frame, then on its adaptive threshold and the inverse
    of that. Full-frame zbar costs ~25 ms a pass at 1280x720, so after zxing it only runs when
    zxing located a symbol it could not decode (`always=True` runs it on every frame)."""

    name = "zbar"

    def __init__(self, zbar: Any, *, always: bool) -> None:
        self._zbar = zbar
        self._symbols = [zbar.ZBarSymbol.QRCODE]
        self.always = always

    def read(self, frame: _Frame) -> list[Decoded]:
        if not self.always and frame.candidates == 0:
            return []  # zxing looked and saw nothing shaped like a QR code
        images: Iterable[Callable[[], Gray]] = (
            lambda: frame.gray,
            lambda: frame.threshold,
            lambda: np.asarray(cv2.bitwise_not(frame.threshold), dtype=np.uint8),
        )
        for image in images:
            symbols = self._zbar.decode(image(), symbols=self._symbols)
            if symbols:
                return [self._decoded(s) for s in symbols]
        return []

    def _decoded(self, symbol: Any) -> Decoded:
        # libzbar hands QR byte content over as UTF-8, converted from the code's character set.
        text, raw = _text_of(bytes(symbol.data))
        r = symbol.rect
        return Decoded(text, self.name, (int(r.left), int(r.top), int(r.width), int(r.height)), raw)


# --- the chain ------------------------------------------------------------------------------


class Decoder:
    """Reads QR codes in BGR (or grayscale) frames through a chain of engines, first hit wins.

    `Decoder()` runs roi → zxing → zbar; `Decoder(engines=("zbar",))` runs zbar alone. An engine
    whose library does not load is left out (said once in the log). The roi engine remembers the
    last hit for `roi_frames` frames, so use one Decoder per camera, from one thread.
    """

    def __init__(
        self,
        engines: Sequence[str] = DEFAULT_ENGINES,
        *,
        roi_frames: int = 15,
        zbar_always: bool = False,
    ) -> None:
        unknown = [e for e in engines if e not in ENGINES]
        if unknown or not engines:
            raise ValueError(f"unknown QR engines {unknown}; choose from {', '.join(ENGINES)}")
        self._roi: _Roi | None = None
        self._engines: list[_Engine] = []
        for name in dict.fromkeys(engines):
            module = _library(_library_of(name))
            if module is None:
                continue
            if name == "roi":
                self._roi = _Roi(module)
                self._engines.append(self._roi)
            elif name == "zxing":
                self._engines.append(_Zxing(module))
            else:
                self._engines.append(_Zbar(module, always=zbar_always))
        if not self._engines:
            raise ValueError(f"none of the QR engines {list(engines)} is available here")
        self.roi_frames = roi_frames
        self._roi_left = 0

    @property
    def engines(self) -> tuple[str, ...]:
        """The engines this decoder runs, in order."""
        return tuple(e.name for e in self._engines)

    def decode(self, frame: np.ndarray[Any, Any]) -> list[Decoded]:
        """The codes in one frame, read by the first engine that reads any (empty: none)."""
        _check_frame(frame)
        if min(frame.shape[:2]) < _SMALLEST_CODE:
            return []
        state = _Frame(_to_gray(frame))
        for engine in self._engines:
            found = _unique(engine.read(state))
            if found:
                self._remember(found)
                return found
        self._remember([])
        return []

    def reset(self) -> None:
        """Forget the last hit (a new camera, or unrelated images)."""
        self._roi_left = 0
        if self._roi is not None:
            self._roi.rect = None

    def _remember(self, found: list[Decoded]) -> None:
        if self._roi is None:
            return
        rect = next((d.rect for d in found if d.rect is not None), None)
        if rect is not None:
            self._roi.rect, self._roi_left = rect, self.roi_frames
        elif self._roi_left > 0:
            self._roi_left -= 1
            if self._roi_left == 0:
                self._roi.rect = None


def _unique(found: list[Decoded]) -> list[Decoded]:
    """One entry per text: engines that try several images may report a code twice."""
    seen: set[str] = set()
    out = []
    for d in found:
        if d.text not in seen:
            seen.add(d.text)
            out.append(d)
    return out
