"""Frame sources (image folders, video files, cameras) and the CodeReader's read-once rule, on
real generated frames read by the real decoder."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scanner_app.decoder import Decoded, Decoder
from scanner_app.frames import (
    FrameSource,
    ImageFolderSource,
    SourceError,
    VideoFileSource,
    open_source,
)
from scanner_app.reader import CodeReader, ReaderSettings, SeenCodes
from tests.scanner.qrframes import empty_frame, qr_frame, write_image_dir, write_video

Frame = np.ndarray[Any, Any]
CODE = "GATE-42 Ana Ruiz"
OTHER = "GATE-43 Bo Lee"


def drain(source: FrameSource) -> list[Frame]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def small(colour: int) -> Frame:
    return np.full((48, 64, 3), colour, np.uint8)


@pytest.fixture(scope="module")
def scene() -> dict[str, Frame]:
    """The frames the reader tests are made of (drawn once: drawing costs ~50 ms a frame)."""
    return {
        "code": qr_frame(CODE, seed=1),
        "moved": qr_frame(CODE, seed=1, offset=(12.0, -6.0), rotation=4.0),
        "other": qr_frame(OTHER, seed=2, offset=(-300.0, 100.0)),
        "empty": empty_frame(1),
    }


class Frames(FrameSource):
    """A list of frames, played once (finite) or as a live camera that then goes dark."""

    def __init__(self, frames: list[Frame], *, finite: bool = True) -> None:
        self.frames = list(frames)
        self.finite = finite
        self.name = "test frames"
        self.closed = False

    def read(self) -> Frame | None:
        if self.closed or not self.frames:
            return None
        return self.frames.pop(0)

    def close(self) -> None:
        self.closed = True


def run(source: FrameSource, **settings: Any) -> tuple[CodeReader, list[Decoded]]:
    codes: list[Decoded] = []
    reader = CodeReader(
        source, Decoder(), on_code=codes.append, settings=ReaderSettings(**settings)
    ).start()
    assert reader.done.wait(60), "the reader did not finish its finite source"
    reader.join()
    assert reader.error is None
    return reader, codes


# --- image folders ------------------------------------------------------------------------------


def test_an_image_folder_is_read_in_sorted_name_order(tmp_path: Path) -> None:
    for name, colour in [("b.png", 20), ("a.png", 10), ("10.png", 40), ("9.png", 30)]:
        cv2.imwrite(str(tmp_path / name), small(colour))
    with open_source(tmp_path) as source:
        assert isinstance(source, ImageFolderSource) and source.finite
        assert [p.name for p in source.files] == ["10.png", "9.png", "a.png", "b.png"]
        colours = [int(frame[0, 0, 0]) for frame in drain(source)]
    assert colours == [40, 30, 10, 20]


def test_an_unreadable_image_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cv2.imwrite(str(tmp_path / "1.png"), small(10))
    (tmp_path / "2.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    (tmp_path / "3.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "4.png"), cv2.cvtColor(small(40), cv2.COLOR_BGR2GRAY))
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    with caplog.at_level(logging.WARNING, logger="scanner_app.frames"):
        source = open_source(str(tmp_path))
        assert isinstance(source, ImageFolderSource)
        frames = drain(source)
    assert [f.shape for f in frames] == [(48, 64, 3), (48, 64, 3)]  # grayscale comes as BGR
    assert [p.name for p in source.skipped] == ["2.jpg", "3.png"]
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped {tmp_path / '2.jpg'}: not a readable image",
        f"skipped {tmp_path / '3.png'}: not a readable image",
    ]


def test_a_folder_without_images_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="holds no images"):
        open_source(tmp_path)


def test_write_image_dir_draws_codes_and_keeps_frames(tmp_path: Path) -> None:
    paths = write_image_dir(tmp_path / "shots", [CODE, small(5)])
    assert [p.name for p in paths] == ["frame_000.png", "frame_001.png"]
    source = open_source(tmp_path / "shots")
    first, second = source.read(), source.read()
    assert first is not None and first.shape == (720, 1280, 3)
    assert [d.text for d in Decoder().decode(first)] == [CODE]
    assert second is not None and second.shape == (48, 64, 3)
    assert source.read() is None


# --- video files and cameras --------------------------------------------------------------------


def test_a_video_file_plays_to_its_end(tmp_path: Path, scene: dict[str, Frame]) -> None:
    path = write_video(tmp_path / "door.avi", [scene["empty"], scene["code"], scene["code"]])
    with open_source(path) as source:
        assert isinstance(source, VideoFileSource) and source.finite
        assert source.fps == pytest.approx(10.0)
        frames = drain(source)
        assert source.read() is None
    assert [f.shape for f in frames] == [(720, 1280, 3)] * 3
    assert [d.text for d in Decoder().decode(frames[1])] == [CODE]  # MJPG keeps it readable


def test_a_missing_path_is_a_one_line_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as raised:
        open_source(tmp_path / "nowhere.avi")
    assert (
        str(raised.value) == f"no such camera, video file or image folder: {tmp_path}/nowhere.avi"
    )
    assert "\n" not in str(raised.value)


def test_a_file_that_is_not_a_video_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.avi"
    path.write_text("not a video")
    with pytest.raises(SourceError, match="cannot be read as a video"):
        open_source(path)


def test_a_camera_that_cannot_be_opened_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=r"^camera 97 cannot be opened"):
        open_source("97")
    with pytest.raises(SourceError, match=r"^camera 98 cannot be opened"):
        open_source(98)


def test_write_video_refuses_frames_of_different_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame 1 is"):
        write_video(tmp_path / "bad.avi", [small(1), np.zeros((10, 10, 3), np.uint8)])
    with pytest.raises(ValueError, match="at least one frame"):
        write_video(tmp_path / "none.avi", [])


# --- the read-once rule -------------------------------------------------------------------------


def test_seen_codes_reads_a_code_once_while_it_stays() -> None:
    seen = SeenCodes(gone_after=10)
    assert [seen.sighting(CODE, at) for at in (1, 2, 3, 13)] == [True, False, False, False]
    assert seen.sighting(CODE, 24) is True  # out of view for 10 frames (14..23): read again
    assert seen.sighting(OTHER, 24) is True
    seconds = SeenCodes(gone_after=1.0)
    assert [seen_at(seconds, t) for t in (0.0, 0.5, 1.4, 2.5)] == [True, False, False, True]


def seen_at(seen: SeenCodes, at: float) -> bool:
    return seen.sighting(CODE, at)


def test_a_code_held_in_view_for_20_frames_is_read_once_and_again_after_it_left(
    scene: dict[str, Frame],
) -> None:
    code, moved, empty = scene["code"], scene["moved"], scene["empty"]
    held = [code, moved] * 10  # 20 frames, the hand moving a little
    blink = [code, empty, empty, empty, moved, code]  # out of view for 3 frames: same reading
    gone = [empty] * 11  # out of view for 11 frames: a new reading when it comes back
    frames = [empty, *held, *blink, *gone, code, code]
    reader, codes = run(Frames(frames), gone_frames=10)
    # back where it was: the region of interest reads it
    assert [(d.text, d.engine) for d in codes] == [(CODE, "zxing"), (CODE, "roi")]
    assert reader.frames_read == reader.frames_decoded == len(frames)
    assert reader.frames_skipped == 0
    assert reader.codes_read == 2


def test_two_codes_are_each_read_once(scene: dict[str, Frame]) -> None:
    frames = [scene["code"], scene["code"], scene["other"], scene["code"], scene["other"]]
    _, codes = run(Frames(frames), gone_frames=10)
    assert [d.text for d in codes] == [CODE, OTHER]


def test_the_reader_reads_a_video_file_and_an_image_folder(
    tmp_path: Path, scene: dict[str, Frame]
) -> None:
    frames = [scene["empty"], scene["code"], scene["code"], scene["other"]]
    write_video(tmp_path / "door.avi", frames)
    write_image_dir(tmp_path / "shots", frames)
    for spec in (tmp_path / "door.avi", tmp_path / "shots"):
        reader, codes = run(open_source(spec))
        assert [d.text for d in codes] == [CODE, OTHER]
        assert reader.frames_read == 4
        assert reader.done.is_set() and not reader.running


def test_previews_get_every_frame_or_a_throttled_share(scene: dict[str, Frame]) -> None:
    frames = [scene["empty"]] * 6
    previews: list[Frame] = []
    ticks = iter(float(i) * 0.03 for i in range(100))  # a frame every 30 ms
    reader = CodeReader(
        Frames(frames),
        Decoder(),
        on_code=lambda _: None,
        on_frame=previews.append,
        settings=ReaderSettings(preview_fps=None),
    ).start()
    assert reader.done.wait(60)
    assert len(previews) == 6
    previews.clear()
    reader = CodeReader(
        Frames(frames),
        Decoder(),
        on_code=lambda _: None,
        on_frame=previews.append,
        settings=ReaderSettings(preview_fps=15.0),  # at most one every 66 ms
        clock=lambda: next(ticks),
    ).start()
    assert reader.done.wait(60)
    assert len(previews) == 2  # at 0 and 90 ms; 30, 60, 120 and 150 ms came too soon


def test_a_live_camera_skips_frames_the_decoder_had_no_time_for(scene: dict[str, Frame]) -> None:
    """A camera never waits for the decoder: frames arriving while it decodes are dropped, and
    a code held in view is still read once."""
    camera = Frames([scene["code"]] * 30, finite=False)
    codes: list[Decoded] = []
    reader = CodeReader(
        camera,
        Decoder(),
        on_code=codes.append,
        settings=ReaderSettings(max_failed_reads=3),
    )
    reader.start()
    assert reader.done.wait(60)  # the camera went dark: given up after 3 failed reads
    assert isinstance(reader.error, SourceError)
    assert str(reader.error) == "test frames stopped delivering frames"
    assert [d.text for d in codes] == [CODE]
    assert reader.frames_read == 30
    assert reader.frames_decoded + reader.frames_skipped <= 30
    assert reader.frames_decoded >= 1
    assert camera.closed


def test_stop_ends_a_live_reader_and_closes_its_source(scene: dict[str, Frame]) -> None:
    camera = Endless(scene["empty"])
    with CodeReader(camera, Decoder(), on_code=lambda _: None) as reader:
        assert camera.delivered.wait(30)
        assert reader.running
    assert reader.done.is_set() and not reader.running
    assert reader.error is None
    assert camera.closed


class Endless(FrameSource):
    """A live camera that always has a frame (and says when it delivered the first)."""

    finite = False
    name = "endless"

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.delivered = threading.Event()
        self.closed = False

    def read(self) -> Frame | None:
        self.delivered.set()
        threading.Event().wait(0.005)
        return None if self.closed else self.frame

    def close(self) -> None:
        self.closed = True


def test_an_error_in_a_callback_stops_the_reader_and_is_kept(
    scene: dict[str, Frame], caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(_: Decoded) -> None:
        raise RuntimeError("gate is closed")

    reader = CodeReader(Frames([scene["code"]] * 5), Decoder(), on_code=refuse).start()
    assert reader.done.wait(60)
    assert isinstance(reader.error, RuntimeError)
    assert "code reader stopped: gate is closed" in caplog.text


def test_a_reader_starts_once(scene: dict[str, Frame]) -> None:
    reader = CodeReader(Frames([scene["empty"]]), Decoder(), on_code=lambda _: None).start()
    with pytest.raises(RuntimeError, match="starts once"):
        reader.start()
    reader.join()
