"""The scanner app end to end: a real server on loopback, `doorcheck scanner --web` in its own
process, Debian's Chromium driven by Playwright through the Flutter semantics tree.

Pairs with a pairing link, chooses the gate, admits a ticket typed like a handheld scanner
(and one shown to the camera when the camera layer is built), denies an unknown code, keeps
scanning offline, visits search, walk-in and activity in Spanish, and once the server is back
resolves the conflict its offline admission caused. Screenshots land in `docs/screenshots/`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("scanner_app.gate") is None:
    pytest.skip("scanner_app.gate is not built yet", allow_module_level=True)
if shutil.which("chromium") is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

from tests.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    DOORCHECK,
    free_port,
    serve,
    stop_process,
    wait_http,
)
from tests.server.conftest import Api, Org, add_attendee, api, org, setup_event  # noqa: E402
from tests.ui.browser import type_into  # noqa: E402

__all__ = ["api", "org"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
WAIT_MS = 60_000  # an upper bound for a slow CI machine, not a performance assertion


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.db'}"


def _has_camera_layer() -> bool:
    return all(
        importlib.util.find_spec(f"scanner_app.{name}") is not None
        for name in ("frames", "reader", "decoder")
    )


def _scanner_command() -> list[str]:
    """`doorcheck scanner` once the command is registered; the module itself until then."""
    probe = subprocess.run([DOORCHECK, "scanner", "--help"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [DOORCHECK, "scanner"]
    return [sys.executable, "-m", "scanner_app.cli_scanner"]


def _qr_video(path: Path, text: str) -> Path:
    """A short MJPEG video showing one ticket's QR, as a camera at the door would see it."""
    import cv2
    import numpy as np
    import segno

    qr = segno.make_qr(text, error="m")
    matrix = np.array([[0 if dark else 255 for dark in row] for row in qr.matrix], np.uint8)
    code = cv2.resize(matrix, (360, 360), interpolation=cv2.INTER_NEAREST)
    frame = np.full((480, 640), 255, np.uint8)
    frame[60:420, 140:500] = code
    colour = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(40):
        writer.write(colour)
    writer.release()
    return path


@pytest.fixture
def scanner_app(tmp_path: Path, api: Api, org: Org) -> Iterator[dict[str, Any]]:
    event = setup_event(org, zone_capacity=100)
    people = {
        "ana": add_attendee(org, event["id"], first_name="Ana", last_name="Ruiz", email="a@x.io"),
        "bo": add_attendee(org, event["id"], first_name="Bo", last_name="Núñez", ticket_type="vip"),
        "cy": add_attendee(org, event["id"], first_name="Cy", last_name="Lee", email="c@x.io"),
        "di": add_attendee(org, event["id"], first_name="Di", last_name="Mora"),
    }
    enrolment = org.client.post("/v1/devices", json={"name": "Door 1"}).json()
    other_gate = org.client.post("/v1/devices", json={"name": "Door 2"}).json()
    camera = _has_camera_layer()
    video = _qr_video(tmp_path / "door.avi", people["cy"]["qr"]) if camera else None
    with _running_app(tmp_path, video) as url:
        yield {
            "url": url,
            "api": api,
            "event": event,
            "people": people,
            "pairing_uri": enrolment["pairing_uri"],
            "other_code": other_gate["enrollment_code"],
            "admin_key": org.admin_key,
            "data": tmp_path,
            "camera": camera,
        }


@contextmanager
def _running_app(tmp_path: Path, video: Path | None) -> Iterator[str]:
    """`doorcheck scanner --web` in its own process (with `video` as its camera); its URL."""
    port = free_port()
    command = [*_scanner_command(), "--web", "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "gate")]
    if video is not None:
        command += ["--camera", str(video)]
    env = {**os.environ, "DOORCHECK_VERDICT_SECONDS": "4", "FLET_WEB_NO_CDN": "1"}
    log = (tmp_path / "scanner.log").open("wb")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, proc, tmp_path / "scanner.log")
        yield url
    finally:
        stop_process(proc)
        log.close()


def _other_gate(app: dict[str, Any]) -> Any:
    """A second, headless gate at Gate B with a warm cache (its sync loop is not started)."""
    from scanner_app.gate import Gate

    gate = Gate(app["data"] / "gate2")
    gate.pair(app["api"].url, app["other_code"], "Door 2")
    gate.configure(app["event"]["id"], app["event"]["gate_b"]["id"], "in", "Op")
    gate.sync_now()
    return gate


def _node(page: Any, identifier: str) -> Any:
    return page.locator(f'[flt-semantics-identifier="{identifier}"]')


def _wait_screen(page: Any, identifier: str) -> None:
    _node(page, identifier).first.wait_for(state="attached", timeout=WAIT_MS)


def _label(page: Any, identifier: str) -> str:
    node = _node(page, identifier).first
    node.wait_for(state="attached", timeout=WAIT_MS)
    return str(node.get_attribute("aria-label") or "") + " " + str(node.inner_text())


def _wait_verdict(page: Any, *words: str) -> str:
    """Wait for a verdict overlay whose text holds every word; answers that text."""
    pattern = "".join(f"(?=.*{re.escape(w)})" for w in words)
    page.wait_for_function(
        """(pattern) => [...document.querySelectorAll('[flt-semantics-identifier="verdict"]')]
            .some(n => new RegExp(pattern, 's').test(
                (n.getAttribute('aria-label') || '') + ' ' + n.innerText))""",
        arg=pattern,
        timeout=WAIT_MS,
    )
    return _label(page, "verdict")


def _wait_text(page: Any, identifier: str, text: str) -> None:
    """Wait until a screen shows `text` (Flutter may merge a card's texts into one label)."""
    page.wait_for_function(
        """([id, text]) => [...document.querySelectorAll(
                `[flt-semantics-identifier="${id}"], [flt-semantics-identifier="${id}"] *`)]
            .some(n => ((n.getAttribute('aria-label') || '') + ' ' + n.innerText)
                .includes(text))""",
        arg=[identifier, text],
        timeout=WAIT_MS,
    )


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # the canvas paints after the semantics tree updates
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _dismiss_verdict(page: Any) -> None:
    page.keyboard.press("Escape")
    _node(page, "verdict").first.wait_for(state="detached", timeout=WAIT_MS)


def _type_into(page: Any, name: Any, text: str, *, enter: bool = False) -> None:
    type_into(page, name, text, enter=enter, wait_ms=WAIT_MS)


def _type_code(page: Any, code: str) -> None:
    _type_into(page, re.compile("^Ticket code|^Código de entrada"), code, enter=True)


def test_scanner_app_end_to_end(scanner_app: dict[str, Any], tmp_path: Path) -> None:
    people = scanner_app["people"]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 860})
        try:
            page.goto(scanner_app["url"])
            page.wait_for_selector("flutter-view", timeout=WAIT_MS)
            page.locator("flt-semantics-placeholder").dispatch_event("click")

            # 1. pair with the pairing link the admin created
            _wait_screen(page, "screen-pair")
            _shot(page, "pair")
            _type_into(page, re.compile("pairing link"), scanner_app["pairing_uri"], enter=True)

            # 2. the gate: the first active checkpoint is preselected
            _wait_screen(page, "screen-setup")
            _shot(page, "setup")
            page.get_by_role("button", name="Start scanning").click()

            # 3. the camera (when the camera layer is built) reads Cy's ticket; waited for first:
            # the camera may read it at once, and the verdict is shown only for a few seconds
            if scanner_app["camera"]:
                _wait_verdict(page, "ADMIT", "Cy Lee")
                _shot(page, "verdict-camera")
                _dismiss_verdict(page)
            _wait_screen(page, "screen-scan")
            assert "Online" in _label(page, "status")

            # 4. a handheld scanner types Bo's ticket and Enter: VIP admitted
            _type_code(page, people["bo"]["qr"])
            text = _wait_verdict(page, "ADMIT", "Bo Núñez")
            assert "VIP" in text
            _shot(page, "verdict-admit")
            _dismiss_verdict(page)

            # 5. an unknown code is denied, with the reason
            _type_code(page, "NOT-A-TICKET-42")
            assert "Ticket not found" in _wait_verdict(page, "DENIED")
            _shot(page, "verdict-denied")
            _dismiss_verdict(page)

            # 6. the server goes away: the door says so, keeps scanning, the upload waits;
            #    meanwhile Gate B (a headless gate, offline too) lets Ana in first
            api = scanner_app["api"]
            other = _other_gate(scanner_app)
            api.live.stop()
            _node(page, "offline-badge").first.wait_for(state="attached", timeout=WAIT_MS)
            assert "Offline" in _label(page, "offline-badge")
            assert other.submit(people["ana"]["qr"], source="keyboard").accepted
            _type_code(page, people["ana"]["qr"])
            assert "decided offline" in _wait_verdict(page, "ADMIT", "Ana Ruiz")
            _dismiss_verdict(page)
            page.wait_for_function(
                """() => /[1-9][0-9]* to upload/.test(
                    document.querySelector('[flt-semantics-identifier="status"]')
                        ?.getAttribute('aria-label') || '')""",
                timeout=WAIT_MS,
            )
            _shot(page, "scan-offline")

            # 7. Spanish, and the desk screens through their keyboard shortcuts
            page.get_by_role("button", name="Español").click()
            _node(page, "screen-scan").first.wait_for(state="attached", timeout=WAIT_MS)
            page.wait_for_function(
                """() => (document.querySelector('[flt-semantics-identifier="status"]')
                    ?.getAttribute('aria-label') || '').includes('por subir')""",
                timeout=WAIT_MS,
            )
            _type_code(page, people["ana"]["qr"])
            _wait_verdict(page, "Ana Ruiz")
            _shot(page, "verdict-es")
            _dismiss_verdict(page)

            page.keyboard.press("F3")
            _wait_screen(page, "screen-search")
            _type_into(page, re.compile("Nombre, email o código"), "Mora")
            page.get_by_text("Di Mora").first.wait_for(timeout=WAIT_MS)
            _shot(page, "search")

            page.keyboard.press("F4")
            _wait_screen(page, "screen-walkin")
            _type_into(page, re.compile("^Email"), "not-an-email")
            page.get_by_role("button", name="Registrar y dejar pasar").click()
            page.get_by_text("Obligatorio").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("No es un email válido").first.wait_for(timeout=WAIT_MS)
            _shot(page, "walkin-errors")

            page.keyboard.press("F5")
            _wait_screen(page, "screen-activity")
            page.get_by_text("Pendiente de subir").first.wait_for(timeout=WAIT_MS)
            _shot(page, "activity")

            # 8. the server is back: both gates upload, the server opens a conflict (Ana was
            #    let in twice), and an admin resolves it on the device
            api.live = serve(api.app, port=int(api.url.rsplit(":", 1)[1]))
            other.sync_now()
            other.close()
            page.keyboard.press("F9")
            page.wait_for_function(
                """() => (document.querySelector('[flt-semantics-identifier="status"]')
                    ?.getAttribute('aria-label') || '').includes('Todo subido')""",
                timeout=WAIT_MS,
            )
            page.keyboard.press("F6")
            _wait_screen(page, "screen-admin")
            _type_into(page, re.compile("Clave API"), scanner_app["admin_key"], enter=True)
            _wait_text(page, "screen-admin", "Admitido estando ya dentro")
            _shot(page, "admin")
            page.get_by_role("button", name="Aceptar").first.click()
            _wait_text(page, "screen-admin", "No hay conflictos abiertos")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            log = (tmp_path / "scanner.log").read_text(errors="replace")
            sys.stderr.write(f"screenshot: {tmp_path / 'failure.png'}\nscanner log:\n{log[-4000:]}")
            raise
        finally:
            browser.close()


def test_pairing_with_the_pairing_qr_shown_to_the_camera(
    tmp_path: Path, api: Api, org: Org
) -> None:
    """First run, nothing typed: the admin's pairing QR held up to the camera pairs the device."""
    if not _has_camera_layer():
        pytest.skip("the camera layer (frames, reader, decoder) is not built")
    setup_event(org)
    enrolment = org.client.post("/v1/devices", json={"name": "Door 9"}).json()
    video = _qr_video(tmp_path / "pairing.avi", enrolment["pairing_uri"])
    with _running_app(tmp_path, video) as url, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 860})
        try:
            page.goto(url)
            page.wait_for_selector("flutter-view", timeout=WAIT_MS)
            page.locator("flt-semantics-placeholder").dispatch_event("click")
            # a fresh gate opens on the pairing screen; the camera may read the code before
            # the browser has drawn it, so only the setup screen that follows is waited for
            _wait_screen(page, "screen-setup")
        finally:
            browser.close()
    devices = org.client.get("/v1/devices").json()["data"]
    assert [d["status"] for d in devices if d["id"] == enrolment["id"]] == ["active"], devices
