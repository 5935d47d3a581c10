"""A supervisor override in Chromium (SPEC section 11): a guest denied because the zone is full
(the denial says 1 / 1 inside and shows the code), a wrong override PIN refused, the right one
admits, and the server records the reading as an override. Screenshots of the denial and the
dialog at 1280x800 and at phone size, in English and Spanish."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

if shutil.which("chromium") is None:
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

from tests.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.server.conftest import Api, Org, add_attendee, api, org, setup_event  # noqa: E402
from tests.ui.browser import type_into  # noqa: E402
from tests.ui.test_e2e import (  # noqa: E402
    WAIT_MS,
    _dismiss_verdict,
    _running_app,
    _shot,
    _type_code,
    _wait_screen,
    _wait_verdict,
)

__all__ = ["api", "org"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PIN = "482916"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.db'}"


def _open(p: Any, url: str, width: int, height: int) -> tuple[Any, Any]:
    browser = p.chromium.launch(
        executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
    )
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector("flutter-view", timeout=WAIT_MS)
    page.locator("flt-semantics-placeholder").dispatch_event("click")
    return browser, page


def _type_into_code_es(page: Any, code: str) -> None:
    type_into(page, re.compile("^Código de entrada"), code, enter=True, wait_ms=WAIT_MS)


def test_an_override_with_the_right_pin_admits_and_is_recorded(
    tmp_path: Path, api: Api, org: Org
) -> None:
    event = setup_event(org, zone_capacity=1)
    eid = event["event"]["id"]
    assert org.client.patch(f"/v1/events/{eid}", json={"override_pin": PIN}).status_code == 200
    bo = add_attendee(org, eid, first_name="Bo", last_name="Núñez")
    ana = add_attendee(org, eid, first_name="Ana", last_name="Ruiz")
    cy = add_attendee(org, eid, first_name="Cy", last_name="Lee")
    enrolment = org.client.post("/v1/devices", json={"name": "Door 1"}).json()
    with playwright_api.sync_playwright() as p, _running_app(tmp_path, None) as url:
        browser, page = _open(p, url, 1280, 800)
        try:
            _wait_screen(page, "screen-pair")
            type_into(
                page, re.compile("pairing link"), enrolment["pairing_uri"], enter=True,
                wait_ms=WAIT_MS,
            )  # fmt: skip
            _wait_screen(page, "screen-setup")
            page.get_by_role("button", name="Start scanning").click()
            _wait_screen(page, "screen-scan")
            _type_code(page, bo["qr"])
            _wait_verdict(page, "ADMIT", "Bo Núñez")
            _dismiss_verdict(page)

            _type_code(page, ana["qr"])
            text = _wait_verdict(page, "DENIED", "Ana Ruiz", "Zone full")
            assert "1 / 1 inside" in text and "Code " in text
            _shot(page, "verdict-zone-full")
            _dismiss_verdict(page)

            page.keyboard.press("F10")
            page.get_by_text("Supervisor override").first.wait_for(timeout=WAIT_MS)
            page.locator('[flt-semantics-identifier="override-reason"]').first.click()
            page.get_by_text("Staff decision").last.click()
            type_into(page, re.compile("^Note"), "Speaker, badge lost", wait_ms=WAIT_MS)
            type_into(page, re.compile("^Override PIN"), "111111", wait_ms=WAIT_MS)
            page.get_by_role("button", name="Let in").click()
            page.get_by_text("Wrong override PIN.").first.wait_for(timeout=WAIT_MS)
            _shot(page, "override-wrong-pin")
            page.get_by_role("textbox", name=re.compile("^Override PIN")).click()
            for _ in range(12):  # the wrong PIN is still there: rubbed out, as staff would
                page.keyboard.press("Backspace")
            type_into(page, re.compile("^Override PIN"), PIN, wait_ms=WAIT_MS)
            page.get_by_role("button", name="Let in").click()
            assert "Let in by a supervisor" in _wait_verdict(page, "ADMIT", "Ana Ruiz")
            _shot(page, "verdict-override")

            # out mode: a band over the scan screen, the frame in its colour
            _dismiss_verdict(page)
            page.keyboard.press("F7")
            page.locator('[flt-semantics-identifier="out-mode"]').first.wait_for(
                state="attached", timeout=WAIT_MS
            )
            _shot(page, "scan-out-mode")
            page.keyboard.press("F7")

            # a phone in Spanish: the denial's word on one line, its detail, the dialog
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(url)
            phone.wait_for_selector("flutter-view", timeout=WAIT_MS)
            phone.locator("flt-semantics-placeholder").dispatch_event("click")
            _wait_screen(phone, "screen-scan")
            phone.get_by_role("button", name="Español").click()
            _wait_screen(phone, "screen-scan")
            _type_into_code_es(phone, cy["qr"])
            text = _wait_verdict(phone, "DENEGADO", "Cy Lee", "Zona completa")
            assert "2 / 1 dentro" in text or "1 / 1 dentro" in text, text
            _shot(phone, "verdict-zone-full-phone-es")
            _dismiss_verdict(phone)
            phone.keyboard.press("F10")
            phone.get_by_text("Autorización del supervisor").first.wait_for(timeout=WAIT_MS)
            _shot(phone, "override-phone-es")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            log = (tmp_path / "scanner.log").read_text(errors="replace")
            sys.stderr.write(f"screenshot: {tmp_path / 'failure.png'}\nscanner log:\n{log[-4000:]}")
            raise
        finally:
            browser.close()

        deadline = time.monotonic() + WAIT_MS / 1000
        overridden: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not overridden:
            scans = org.client.get(
                f"/v1/events/{eid}/scans", params={"attendee": ana["id"], "limit": 10}
            ).json()["data"]
            overridden = [s for s in scans if s["override"]]
            time.sleep(0.3)
    assert len(overridden) == 1, scans
    assert overridden[0]["status"] == "accepted"
    assert overridden[0]["override_reason"] == "staff_decision"
    assert overridden[0]["override_note"] == "Speaker, badge lost"
