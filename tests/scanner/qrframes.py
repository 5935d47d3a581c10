"""Camera-like test frames: a QR code (segno) on a card held in front of a cluttered door scene,
with perspective, rotation, blur, sensor noise, glare and dark mode as asked.

    frame = qr_frame("GATE-42", perspective=0.6, blur=1.2, seed=3)   # 1280x720 BGR uint8
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import segno

from scanner_app.frames import write_video as _write_video

__all__ = ["empty_frame", "qr_frame", "write_image_dir", "write_video"]

Frame = np.ndarray[Any, np.dtype[np.uint8]]
Size = tuple[int, int]  # width, height

QUIET_ZONE = 4
DARK, LIGHT = 24, 236


def qr_frame(
    content: str | bytes,
    *,
    size: Size = (1280, 720),
    module_px: float = 6.0,
    perspective: float = 0.0,
    blur: float = 0.0,
    noise: float = 0.0,
    glare: bool = False,
    inverted: bool = False,
    rotation: float = 0.0,
    error: str = "m",
    offset: tuple[float, float] = (0.0, 0.0),
    seed: int = 0,
) -> Frame:
    """A BGR frame showing `content` as a QR code (bytes give a byte-mode code).

    `module_px` is the module size before perspective; `perspective` 0..1 tilts the card away
    from the camera (1 ≈ 45°); `rotation` turns it in the image plane (degrees); `blur` is a
    Gaussian sigma in pixels; `noise` the standard deviation of sensor noise in grey levels;
    `glare` puts a bright reflection over part of the code; `inverted` shows light modules on a
    dark screen (dark mode); `offset` moves the code from the frame centre (pixels).
    """
    rng = np.random.default_rng([seed, 1])
    width, height = size
    scene = _scene(rng, size)
    card = _card(content, module_px=module_px, inverted=inverted, error=error)
    side = card.shape[0]
    centre = (width / 2 + offset[0], height / 2 + offset[1])
    corners = _placement(rng, side, centre, perspective=perspective, rotation=rotation)
    _paste(scene, card, corners)
    if glare:
        _add_glare(rng, scene, corners)
    return _camera(rng, scene, blur=blur, noise=noise)


def empty_frame(seed: int = 0, *, size: Size = (1280, 720), noise: float = 2.0) -> Frame:
    """A door scene with no code in it, but with QR-like distractors: a card showing a
    checkerboard, bold square logos and text lines."""
    rng = np.random.default_rng([seed, 2])
    scene = _scene(rng, size)
    cell = int(rng.integers(6, 16))
    board = (np.indices((24, 24)).sum(axis=0) % 2).astype(np.uint8)
    card = np.where(np.kron(board, np.ones((cell, cell), np.uint8)) > 0, DARK, LIGHT)
    card = np.pad(card.astype(np.uint8), cell * 2, constant_values=LIGHT)
    _square_logo(card, cell)
    width, height = size
    centre = (width / 2 + rng.uniform(-200, 200), height / 2 + rng.uniform(-100, 100))
    corners = _placement(rng, card.shape[0], centre, perspective=0.3, rotation=rng.uniform(-20, 20))
    _paste(scene, np.dstack([card] * 3), corners)
    return _camera(rng, scene, blur=0.6, noise=noise)


def write_image_dir(
    folder: Path, items: Iterable[str | bytes | Frame], *, suffix: str = ".png"
) -> list[Path]:
    """Write frames (or codes, drawn with `qr_frame(code, seed=i)`) as `frame_000.png`, … in
    order; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, item in enumerate(items):
        frame = qr_frame(item, seed=i) if isinstance(item, str | bytes) else item
        path = folder / f"frame_{i:03d}{suffix}"
        if not cv2.imwrite(str(path), frame):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def write_video(path: Path, frames: Iterable[str | bytes | Frame], *, fps: float = 10.0) -> Path:
    """An MJPG `.avi` of frames (or codes drawn with `qr_frame`), for a video camera source."""
    return _write_video(
        path,
        (qr_frame(f, seed=i) if isinstance(f, str | bytes) else f for i, f in enumerate(frames)),
        fps=fps,
    )


# --- drawing ------------------------------------------------------------------------------------


def _card(content: str | bytes, *, module_px: float, inverted: bool, error: str) -> Frame:
    """The code with its quiet zone on a card (white paper, or a dark-mode phone screen)."""
    code = segno.make(content, error=error, micro=False, boost_error=False)
    modules = np.pad(np.array(code.matrix, dtype=np.uint8), QUIET_ZONE)
    dark, light = (LIGHT, DARK) if inverted else (DARK, LIGHT)
    gray = np.where(modules > 0, dark, light).astype(np.uint8)
    side = max(round(modules.shape[0] * module_px), modules.shape[0])
    gray = np.asarray(cv2.resize(gray, (side, side), interpolation=cv2.INTER_NEAREST), np.uint8)
    gray = np.pad(gray, max(8, side // 12), constant_values=light)
    tint = np.array([0.97, 1.0, 1.0] if not inverted else [1.0, 1.0, 1.0], np.float32)
    card: Frame = np.clip(np.dstack([gray] * 3) * tint, 0, 255).astype(np.uint8)
    return card


def _placement(
    rng: np.random.Generator,
    side: int,
    centre: tuple[float, float],
    *,
    perspective: float,
    rotation: float,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Where the card's corners land in the frame: a square, its far edge shrunk and the card
    foreshortened by the tilt, then turned by `rotation`."""
    half = side / 2
    tilt = float(np.clip(perspective, 0.0, 1.0))
    far = 1.0 - 0.45 * tilt  # the far edge's length relative to the near edge
    depth = 1.0 - 0.25 * tilt  # foreshortening across the tilt
    square = np.array(
        [
            [-half * far, -half * depth],
            [half * far, -half * depth],
            [half, half * depth],
            [-half, half * depth],
        ],
        np.float32,
    )
    far_edge = int(rng.integers(0, 4))  # which of the four edges is away from the camera
    turn = math.radians(rotation + (90.0 * far_edge if tilt > 0 else 0.0))
    c, s = math.cos(turn), math.sin(turn)
    turned = square @ np.array([[c, s], [-s, c]], np.float32)
    return (turned + np.array(centre, np.float32)).astype(np.float32)


def _paste(scene: Frame, card: Frame, corners: np.ndarray[Any, np.dtype[np.float32]]) -> None:
    h, w = card.shape[:2]
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, corners)
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(card, matrix, size, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, size, flags=cv2.INTER_AREA)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    scene[:] = (scene * (1.0 - alpha) + warped * alpha).astype(np.uint8)


def _scene(rng: np.random.Generator, size: Size) -> Frame:
    """A wall with a light gradient, a door frame, posters with text and a striped shirt."""
    width, height = size
    wall = rng.uniform(90, 190)
    tint = rng.uniform(0.85, 1.15, 3)
    ramp = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :] * rng.uniform(-25, 25)
    drop = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None] * rng.uniform(-20, 20)
    base = wall + ramp + drop
    scene = np.clip(base[..., None] * tint[None, None, :], 0, 255).astype(np.uint8)
    x = int(rng.integers(0, width))
    colour = tuple(int(v) for v in rng.integers(30, 220, 3))
    cv2.rectangle(scene, (x, 0), (x + int(rng.integers(40, 160)), height), colour, -1)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = int(rng.integers(-40, width)), int(rng.integers(-40, height))
        w, h = int(rng.integers(60, 300)), int(rng.integers(60, 240))
        paper = tuple(int(v) for v in rng.integers(40, 250, 3))
        cv2.rectangle(scene, (x0, y0), (x0 + w, y0 + h), paper, -1)
        ink = (20, 20, 20) if sum(paper) > 380 else (235, 235, 235)
        for line in range(1, 1 + h // 28):
            words = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(4, 14))))
            cv2.putText(
                scene, words, (x0 + 6, y0 + 24 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.6, ink, 1
            )
    y0 = int(rng.integers(0, height))
    period = int(rng.integers(6, 18))
    for x in range(0, width // 3, period):
        cv2.line(scene, (x, y0), (x, min(height, y0 + 200)), (60, 60, 90), max(1, period // 3))
    return scene


def _square_logo(card: Frame, cell: int) -> None:
    """A finder-pattern-like square in a card corner (a distractor, not a code)."""
    s = cell * 7
    cv2.rectangle(card, (cell, cell), (cell + s, cell + s), DARK, -1)
    cv2.rectangle(card, (2 * cell, 2 * cell), (s, s), LIGHT, -1)
    cv2.rectangle(card, (3 * cell, 3 * cell), (s - cell, s - cell), DARK, -1)


def _add_glare(
    rng: np.random.Generator, scene: Frame, corners: np.ndarray[Any, np.dtype[np.float32]]
) -> None:
    """A specular highlight near one side of the code: it washes out part of the modules."""
    centre = corners.mean(axis=0)
    side = float(np.linalg.norm(corners[1] - corners[0]))
    towards = corners[int(rng.integers(0, 4))]
    spot = centre + (towards - centre) * rng.uniform(0.25, 0.45)
    height, width = scene.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    sigma = side * 0.14
    blob = np.exp(-((xx - spot[0]) ** 2 + (yy - spot[1]) ** 2) / (2 * sigma * sigma))
    lifted = scene.astype(np.float32) + (150.0 * blob)[..., None]
    scene[:] = np.clip(lifted, 0, 255).astype(np.uint8)


def _camera(rng: np.random.Generator, scene: Frame, *, blur: float, noise: float) -> Frame:
    """Defocus, then sensor noise."""
    out = scene.astype(np.float32)
    if blur > 0:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), blur), np.float32)
    if noise > 0:
        out += rng.standard_normal(out.shape, dtype=np.float32) * noise
    return np.clip(out, 0, 255).astype(np.uint8)
