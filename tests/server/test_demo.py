"""`doorcheck demo` from nothing: it prints what a newcomer needs and the demo tickets scan."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e
DOORCHECK = str(Path(sys.executable).with_name("doorcheck"))


def test_demo_serves_a_scannable_event(tmp_path: Path) -> None:
    port, scanner_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            DOORCHECK,
            "demo",
            "--web",
            "--scanner-port",
            str(scanner_port),
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "demo"),
            "--attendees",
            "40",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(lines) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            key, _, value = line.partition(":")
            lines[key] = value.strip()
        assert {"server", "scanner", "admin API key", "ticket sheet", "event"} <= set(lines)
        url = lines["server"].split()[0]
        key = lines["admin API key"]
        sheet = Path(lines["ticket sheet"])
        assert sheet.exists() and sheet.read_text().count("<img") == 40
        event_id, entrance = lines["event"].split()[0], lines["event"].split()[2]
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        people = client.get(f"/v1/events/{event_id}/attendees", params={"limit": 100}).json()[
            "data"
        ]
        assert len(people) == 40
        verdict = client.post(f"/v1/checkpoints/{entrance}/scans", json={"code": people[0]["qr"]})
        assert verdict.json()["verdict"]["status"] == "accepted"
        assert lines["scanner"] == f"http://127.0.0.1:{scanner_port}"
        deadline = time.monotonic() + 60
        devices: list[dict[str, str]] = []
        while time.monotonic() < deadline:  # the demo pairs its gate over HTTP
            devices = client.get("/v1/devices").json()["data"]
            if devices and devices[0]["status"] == "active":
                break
            time.sleep(0.2)
        assert [d["status"] for d in devices] == ["active"]
        page = None
        while time.monotonic() < deadline:
            try:
                page = httpx.get(lines["scanner"], timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and "flutter" in page.text.lower()
        gate_db = tmp_path / "demo" / "scanner" / "scanner.db"
        assert gate_db.exists()
    finally:
        proc.terminate()
        proc.wait(15)


def _read_lines(proc: subprocess.Popen[str], wanted: int, seconds: float) -> dict[str, str]:
    lines: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    while len(lines) < wanted and time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        key, _, value = line.partition(":")
        lines[key] = value.strip()
    return lines


def test_demo_without_a_display_opens_the_scanner_in_the_browser(tmp_path: Path) -> None:
    """The README's first command on a server with no screen: no --web, no DISPLAY; Flet would
    otherwise serve on port 8000 beside the demo's own server and die."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["DOORCHECK_PIN"] = "2468"
    proc = subprocess.Popen(
        [DOORCHECK, "demo", "--port", str(port), "--data-dir", str(tmp_path / "demo"),
         "--attendees", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        lines = _read_lines(proc, 5, 60)
        scanner = lines.get("scanner", "")
        assert scanner.startswith("http://127.0.0.1:"), lines
        assert int(scanner.rsplit(":", 1)[1]) != port
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = httpx.get(scanner, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and "flutter" in page.text.lower()
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "no display here" in err
    assert "Traceback" not in err


def test_demo_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        for args in (
            ["--port", str(taken)],
            ["--port", str(free_port()), "--web", "--scanner-port", str(taken)],
        ):
            done = subprocess.run(
                [DOORCHECK, "demo", *args, "--data-dir", str(tmp_path / "d"), "--attendees", "1"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 1
            assert done.stderr.strip().count("\n") == 0, done.stderr
            assert f"port {taken} is taken" in done.stderr
    same = free_port()
    done = subprocess.run(
        [DOORCHECK, "demo", "--port", str(same), "--web", "--scanner-port", str(same),
         "--data-dir", str(tmp_path / "d"), "--attendees", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "taken" in done.stderr and "Traceback" not in done.stderr
