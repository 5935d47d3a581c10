"""The decoder chain on generated camera frames: what each engine reads, that nothing is read
where there is no code, odd content (binary, control characters, oversized) and the
`doorcheck decode` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scanner_app.decoder import ENGINES, Decoded, Decoder, available_engines
from shared.ids import ATTENDEE, make_id
from shared.tickets import (
    EventKey,
    MalformedCode,
    TicketPayload,
    event_digest,
    issue_ticket,
    normalize_code,
    verify_ticket,
)
from tests.scanner.qrframes import empty_frame, qr_frame

ROOT = Path(__file__).resolve().parents[2]
DOORCHECK = str(Path(sys.executable).parent / "doorcheck")
CODE = "GATE-42 Ana Ruiz"

needs_zbar = pytest.mark.skipif(
    "zbar" not in available_engines(), reason="libzbar0 is not installed"
)


@pytest.fixture(scope="module")
def clean() -> np.ndarray[Any, Any]:
    return qr_frame(CODE, seed=1)


def read(frame: np.ndarray[Any, Any], engines: tuple[str, ...] = ENGINES) -> list[Decoded]:
    return Decoder(engines=engines).decode(frame)


def texts(found: list[Decoded]) -> list[str]:
    return [d.text for d in found]


# --- what the chain reads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "look",
    [
        pytest.param({}, id="clean"),
        pytest.param({"perspective": 0.8}, id="perspective"),
        pytest.param({"blur": 2.0}, id="blur"),
        pytest.param({"noise": 18.0}, id="noise"),
        pytest.param({"glare": True}, id="glare"),
        pytest.param({"inverted": True}, id="dark-mode"),
        pytest.param({"rotation": 33.0}, id="rotated-33"),
        pytest.param({"rotation": 180.0}, id="upside-down"),
        pytest.param({"module_px": 3.0}, id="small"),
        pytest.param(
            {"perspective": 0.5, "blur": 1.2, "noise": 8.0, "rotation": -20.0}, id="combined"
        ),
    ],
)
def test_the_chain_reads_a_code_held_up_to_the_camera(look: dict[str, Any]) -> None:
    found = read(qr_frame(CODE, seed=7, **look))
    assert texts(found) == [CODE]
    assert found[0].engine == "zxing"  # a fresh decoder has no region of interest yet
    x, y, w, h = found[0].rect or (0, 0, 0, 0)
    assert 400 < x + w / 2 < 880 and 200 < y + h / 2 < 520  # the code is at the frame centre


@pytest.mark.parametrize("seed", range(6))
def test_nothing_is_read_where_there_is_no_code(seed: int) -> None:
    frame = empty_frame(seed)
    assert read(frame) == []
    assert Decoder(engines=("zxing",)).decode(frame) == []
    if "zbar" in available_engines():
        assert Decoder(engines=("zbar",), zbar_always=True).decode(frame) == []


def test_blank_and_tiny_frames_read_nothing() -> None:
    decoder = Decoder()
    assert decoder.decode(np.zeros((720, 1280, 3), np.uint8)) == []
    assert decoder.decode(np.full((720, 1280), 255, np.uint8)) == []
    assert decoder.decode(np.zeros((0, 0, 3), np.uint8)) == []
    assert decoder.decode(np.zeros((3, 3, 3), np.uint8)) == []


def test_a_frame_that_is_not_an_8_bit_image_is_refused() -> None:
    with pytest.raises(ValueError, match="8-bit"):
        Decoder().decode(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="BGR"):
        Decoder().decode(np.zeros((10, 10, 5), np.uint8))


def test_a_grayscale_or_bgra_frame_reads_like_bgr(clean: np.ndarray[Any, Any]) -> None:
    gray = cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(clean, cv2.COLOR_BGR2BGRA)
    assert texts(read(gray)) == texts(read(bgra)) == [CODE]


# --- engines, alone and chained -----------------------------------------------------------------


def test_the_default_chain_is_every_available_engine_in_order() -> None:
    assert available_engines() in {("roi", "zxing", "zbar"), ("roi", "zxing")}
    assert Decoder().engines == available_engines()


@pytest.mark.parametrize("engine", ["zxing", pytest.param("zbar", marks=needs_zbar)])
def test_each_engine_alone_reads_a_clean_frame(engine: str, clean: np.ndarray[Any, Any]) -> None:
    found = read(clean, (engine,))
    assert texts(found) == [CODE]
    assert found[0].engine == engine
    assert found[0].rect is not None


def test_the_roi_engine_alone_needs_a_previous_hit(clean: np.ndarray[Any, Any]) -> None:
    assert read(clean, ("roi",)) == []


def test_unknown_engines_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown QR engines"):
        Decoder(engines=("zxing", "tesseract"))
    with pytest.raises(ValueError):
        Decoder(engines=())


def test_the_region_of_interest_reads_a_code_that_stays_in_view() -> None:
    decoder = Decoder()
    first = decoder.decode(qr_frame(CODE, seed=3))
    assert [(d.text, d.engine) for d in first] == [(CODE, "zxing")]
    # the person moves a little: the next frame is read from the crop around the last hit
    moved = decoder.decode(qr_frame(CODE, seed=4, offset=(30.0, -20.0), rotation=8.0))
    assert [(d.text, d.engine) for d in moved] == [(CODE, "roi")]
    x0, y0, w0, h0 = first[0].rect or (0, 0, 0, 0)
    x1, y1, w1, h1 = moved[0].rect or (0, 0, 0, 0)
    assert abs((x1 + w1 / 2) - (x0 + w0 / 2) - 30) < 15  # mapped back to frame coordinates
    assert abs((y1 + h1 / 2) - (y0 + h0 / 2) + 20) < 15


def test_a_code_elsewhere_is_read_by_the_full_frame_engine_after_a_roi_miss() -> None:
    decoder = Decoder()
    assert decoder.decode(qr_frame(CODE, seed=3, offset=(-400.0, -200.0)))[0].engine == "zxing"
    found = decoder.decode(qr_frame("OTHER-7", seed=5, offset=(400.0, 200.0)))
    assert [(d.text, d.engine) for d in found] == [("OTHER-7", "zxing")]


def test_the_region_of_interest_is_forgotten_after_roi_frames_misses() -> None:
    decoder = Decoder(roi_frames=2)
    assert decoder.decode(qr_frame(CODE, seed=3))[0].engine == "zxing"
    blank = empty_frame(1)
    decoder.decode(blank)
    decoder.decode(blank)
    assert decoder.decode(qr_frame(CODE, seed=3))[0].engine == "zxing"
    decoder.reset()
    assert decoder.decode(qr_frame(CODE, seed=3))[0].engine == "zxing"


@needs_zbar
def test_zbar_after_zxing_only_runs_where_zxing_saw_a_symbol(clean: np.ndarray[Any, Any]) -> None:
    # A frame zxing reads stops the chain at zxing; zbar alone (no zxing before it) always runs.
    assert read(clean, ("zxing", "zbar"))[0].engine == "zxing"
    assert read(clean, ("zbar", "zxing"))[0].engine == "zbar"


def test_two_codes_in_one_frame_are_both_read() -> None:
    left = qr_frame("LEFT-1", seed=2, offset=(-320.0, 0.0))
    right = qr_frame("RIGHT-2", seed=2, offset=(320.0, 0.0))
    both = np.concatenate([left[:, :640], right[:, 640:]], axis=1)
    assert sorted(texts(read(both))) == ["LEFT-1", "RIGHT-2"]


# --- content --------------------------------------------------------------------------------------


def test_a_signed_doorcheck_ticket_round_trips() -> None:
    key = EventKey.from_seed(bytes(range(32)))
    payload = TicketPayload(
        event_digest=event_digest("evt_door"),
        attendee_id=make_id(ATTENDEE, bytes(range(16))),
        ticket_type_number=3,
        valid_until=1_900_000_000,
    )
    code = issue_ticket(payload, key.private_bytes())
    found = read(qr_frame(code, module_px=5.0, perspective=0.4, noise=6.0, seed=11))
    assert texts(found) == [code]
    assert verify_ticket(normalize_code(found[0].code), key.public_bytes()) == payload


def test_utf8_text_comes_through() -> None:
    text = "Café ✓ 東京 — Zoë"
    found = read(qr_frame(text, seed=2))
    assert texts(found) == [text]
    assert not found[0].binary
    assert found[0].code == text


@pytest.mark.parametrize("engine", ["zxing", pytest.param("zbar", marks=needs_zbar)])
def test_binary_content_is_reported_and_the_gate_refuses_it(engine: str) -> None:
    content = bytes([0xFF, 0xFE, 0x00, 0x9C]) + np.random.default_rng(5).bytes(24)
    found = read(qr_frame(content, seed=4), (engine,))
    assert len(found) == 1
    (got,) = found
    if engine == "zxing":
        assert got.binary and got.raw == content and got.code == content
        assert "\ufffd" in got.text
    else:
        # libzbar converts byte content to text (ISO-8859-1): the NUL survives as text
        assert "\x00" in got.text
    with pytest.raises(MalformedCode):
        normalize_code(got.code)


def test_control_characters_come_through_as_text_and_the_gate_refuses_them() -> None:
    content = "GATE\x01-42\x1b[2J"
    (found,) = read(qr_frame(content, seed=6))
    assert found.text == content and not found.binary
    with pytest.raises(MalformedCode, match="control"):
        normalize_code(found.code)


def test_the_largest_qr_code_is_read_and_the_gate_refuses_its_length() -> None:
    # A QR code holds at most 2,953 bytes (version 40-L); a 10 kB payload cannot be encoded at
    # all, so the longest a camera can meet is this one.
    content = ("doorcheck-" * 300)[:2953]
    frame = qr_frame(content, module_px=3.0, error="l", seed=8)
    (found,) = read(frame)
    assert found.text == content
    with pytest.raises(MalformedCode):
        normalize_code(found.code)


# --- a missing libzbar --------------------------------------------------------------------------


def test_without_libzbar_the_chain_says_so_once_and_reads_with_the_rest(tmp_path: Path) -> None:
    frame = tmp_path / "code.png"
    cv2.imwrite(str(frame), qr_frame(CODE, seed=1))
    script = f"""
import ctypes.util, logging
find_library = ctypes.util.find_library  # as on a machine without libzbar0:
ctypes.util.find_library = lambda name: None if name == "zbar" else find_library(name)
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
import cv2
from scanner_app.decoder import Decoder, available_engines
image = cv2.imread({str(frame)!r})
first, second = Decoder(), Decoder(engines=("zxing", "zbar"))
print(available_engines(), first.engines, second.engines)
print([(d.text, d.engine) for d in first.decode(image) + second.decode(image)])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "('roi', 'zxing') ('roi', 'zxing') ('zxing',)",
        f"[('{CODE}', 'zxing'), ('{CODE}', 'zxing')]",
    ]
    warnings = [line for line in done.stderr.splitlines() if "zbar" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0] == (
        "WARNING QR engine zbar is not available"
        " (ImportError: Unable to find zbar shared library); decoding without it"
    )


def test_with_no_engine_left_the_decoder_refuses_to_start() -> None:
    script = """
import sys
sys.modules["pyzbar.pyzbar"] = None  # pyzbar not installed at all
from scanner_app.decoder import Decoder
try:
    Decoder(engines=("zbar",))
except ValueError as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("refused: none of the QR engines ['zbar'] is available")


# --- doorcheck decode ---------------------------------------------------------------------------


def decode_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOORCHECK, "decode", *args], capture_output=True, text=True, timeout=120)


def test_doorcheck_decode_json_prints_one_line_per_image(tmp_path: Path) -> None:
    code, empty = tmp_path / "code.jpg", tmp_path / "empty.png"
    cv2.imwrite(str(code), qr_frame(CODE, perspective=0.3, seed=2))
    cv2.imwrite(str(empty), empty_frame(3))
    done = decode_cli("--json", str(code), str(empty))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(code), str(empty)]
    assert lines[0]["codes"] == [{"text": CODE, "engine": "zxing"}]
    assert lines[1]["codes"] == []
    assert all(isinstance(line["ms"], float) and line["ms"] >= 0 for line in lines)


def test_doorcheck_decode_reports_unreadable_files_and_exits_1(tmp_path: Path) -> None:
    code, notes = tmp_path / "code.png", tmp_path / "notes.png"
    cv2.imwrite(str(code), qr_frame(CODE, seed=2))
    notes.write_text("not an image")
    missing = tmp_path / "missing.png"
    done = decode_cli("--json", str(notes), str(code), str(missing))
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"image": str(notes), "error": "not a readable image"}
    assert lines[1]["codes"] == [{"text": CODE, "engine": "zxing"}]
    assert lines[2] == {"image": str(missing), "error": "no such file"}


def test_doorcheck_decode_without_json_prints_readable_lines(tmp_path: Path) -> None:
    code, binary = tmp_path / "code.png", tmp_path / "binary.png"
    cv2.imwrite(str(code), qr_frame(CODE, seed=2))
    cv2.imwrite(str(binary), qr_frame("A\x07B", seed=2))
    done = decode_cli(str(code), str(binary))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith(f"{code}: {CODE} [zxing] (") and first.endswith(" ms)")
    assert second.startswith(f"{binary}: A\\x07B [zxing]")
