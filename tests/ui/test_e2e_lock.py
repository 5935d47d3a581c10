"""The door PIN and the organizer's wipe, in the browser: `doorcheck scanner --web` on a machine
without secure key storage asks staff to choose a PIN, asks for it at the next start (a wrong
one says how many tries are left), and when the organizer wipes the device it erases itself and
says so. At 1280x800 and at phone size, in English and Spanish; screenshots in
`docs/screenshots/`.
"""

from __future__ import annotations

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

if shutil.which("chromium") is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

from tests.conftest import CHROMIUM_ARGS, DOORCHECK, free_port, stop_process, wait_http  # noqa: E402
from tests.server.conftest import Api, Org, add_attendee, api, org, setup_event  # noqa: E402
from tests.ui.browser import type_into  # noqa: E402
from tests.ui.test_e2e import (  # noqa: E402
    SHOTS,
    WAIT_MS,
    _dismiss_verdict,
    _type_code,
    _wait_screen,
    _wait_text,
    _wait_verdict,
)

__all__ = ["api", "org"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PIN = "482916"
DESK = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.db'}"


@contextmanager
def _app(tmp_path: Path, run: str) -> Iterator[str]:
    """The scanner app on a machine whose keyring is not a secure one (keyring's 'fail')."""
    port = free_port()
    command = [DOORCHECK, "scanner", "--web", "--port", str(port)]
    command += ["--data-dir", str(tmp_path / "gate")]
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "DOORCHECK_VERDICT_SECONDS": "4",
    }
    env.pop("DOORCHECK_PIN", None)
    log_path = tmp_path / f"scanner-{run}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}", proc, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


def _open(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_selector("flutter-view", timeout=WAIT_MS)
    page.locator("flt-semantics-placeholder").dispatch_event("click")
    return page


def _type(page: Any, name: Any, text: str, *, enter: bool = False) -> None:
    type_into(page, name, text, enter=enter, wait_ms=WAIT_MS)


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # the canvas paints after the semantics tree updates
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_door_pin_and_remote_wipe_in_the_browser(tmp_path: Path, api: Api, org: Org) -> None:
    event = setup_event(org)
    ana = add_attendee(org, event["id"], first_name="Ana", last_name="Ruiz")
    enrolment = org.client.post("/v1/devices", json={"name": "Door 1"}).json()
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        page = None
        try:
            # 1. first start, no secure storage: choose a PIN (typed twice), then pair
            with _app(tmp_path, "first") as url:
                page = _open(browser, url, DESK)
                _wait_screen(page, "screen-lock")
                _wait_text(page, "screen-lock", "Choose a door PIN")
                _shot(page, "lock-choose")
                _type(page, re.compile("^Door PIN"), PIN)
                _type(page, re.compile("^The same PIN"), "482917", enter=True)
                _wait_text(page, "screen-lock", "The two PINs differ")
                _type(page, re.compile("^Door PIN"), PIN)
                _type(page, re.compile("^The same PIN"), PIN, enter=True)
                _wait_screen(page, "screen-pair")
                _type(page, re.compile("pairing link"), enrolment["pairing_uri"], enter=True)
                _wait_screen(page, "screen-setup")
                page.get_by_role("button", name="Start scanning").click()
                _wait_screen(page, "screen-scan")
                _type_code(page, ana["qr"])
                _wait_verdict(page, "ADMIT", "Ana Ruiz")
                _dismiss_verdict(page)
                page.close()

            # 2. the next start asks for the PIN: a wrong one says what is at stake (phone, ES)
            with _app(tmp_path, "second") as url:
                page = _open(browser, url, PHONE)
                _wait_screen(page, "screen-lock")
                page.get_by_role("button", name="Español").click()
                _wait_text(page, "screen-lock", "Introduzca el PIN de la puerta")
                page.mouse.click(200, 700)  # away from the language button (and its tooltip)
                _shot(page, "lock-enter-phone-es")
                _type(page, re.compile("^PIN de la puerta"), "000000", enter=True)
                _wait_text(page, "screen-lock", "quedan 9 intentos")
                _shot(page, "lock-wrong-phone-es")
                _type(page, re.compile("^PIN de la puerta"), PIN, enter=True)
                _wait_screen(page, "screen-scan")

                # 3. the organizer wipes the device; at its next contact it erases itself
                device = next(d for d in org.client.get("/v1/devices").json()["data"] if d["name"])
                wiped = org.client.post(f"/v1/devices/{device['id']}/wipe")
                assert wiped.status_code == 202, wiped.text
                page.keyboard.press("F9")  # sync now: the next contact
                _wait_screen(page, "screen-lock")
                _wait_text(page, "screen-lock", "El organizador borró este dispositivo")
                _shot(page, "wiped-phone-es")
                page.set_viewport_size(DESK)
                page.get_by_role("button", name="English").click()
                _wait_text(page, "screen-lock", "This device was wiped by the organizer")
                page.mouse.click(640, 700)
                _shot(page, "wiped")
                page.close()
            devices = org.client.get("/v1/devices").json()["data"]
            confirmed = [d for d in devices if d["id"] == device["id"]]
            assert confirmed[0]["wipe_confirmed_at"] is not None, confirmed
            assert not list((tmp_path / "gate").glob("keyslot.json"))
        except Exception:  # (the screenshot is taken once the app stopped: see the logs)
            for log in sorted(tmp_path.glob("scanner-*.log")):
                sys.stderr.write(f"{log.name}:\n{log.read_text(errors='replace')[-3000:]}\n")
            raise
        finally:
            browser.close()
