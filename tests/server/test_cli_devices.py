"""`doorcheck devices create|list|revoke` as an admin runs them: the real console script in a
subprocess, on the database of a live server (`--db`) and through its API (`--server`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import zxingcpp

from sync_server.db import session_scope
from sync_server.services.devices import create_enrolment
from tests.server.conftest import Api, Org

DOORCHECK = str(Path(sys.executable).parent / "doorcheck")
LIGHT = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}  # (top, bottom)


def run(
    *args: str, cwd: Path, secret: str = "unused-" + "z" * 32, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOORCHECK_")}
    environment.update(
        {
            "DOORCHECK_SECRET_KEY": secret,
            "DOORCHECK_DATA_DIR": str(cwd),
            "COLUMNS": "200",
            **(env or {}),
        }
    )
    return subprocess.run(
        [DOORCHECK, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60
    )


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doorcheck: "), done.stderr
    assert all(word in lines[0] for word in words), lines[0]


def enroll(api: Api, code: str) -> str:
    response = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": code, "name": "Phone"})
    assert response.status_code == 200, response.text
    return str(response.json()["device_token"])


def by_id(devices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {device["id"]: device for device in devices}


def decode_terminal_qr(text: str) -> list[str]:
    """Read a QR drawn in half blocks (light modules drawn) back into its text."""
    rows = [line for line in text.splitlines() if line and set(line) <= set(LIGHT)]
    width = max(len(row) for row in rows)
    light = np.zeros((2 * len(rows), width), dtype=np.uint8)
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            light[2 * y, x], light[2 * y + 1, x] = LIGHT[char]
    image = np.kron(light * 255, np.ones((8, 8), dtype=np.uint8))
    return [result.text for result in zxingcpp.read_barcodes(image)]


def test_create_on_the_database_then_enrol_on_the_live_server(api: Api, tmp_path: Path) -> None:
    secret, db = str(api.settings.secret_key), api.settings.db_url
    init = ok(run("init", "--org", "Acme", "--db", db, "--json", cwd=tmp_path, secret=secret))
    local = ("--db", db)
    enrolment = ok(
        run(
            "devices",
            "create",
            "--name",
            "Gate A",
            *local,
            "--server-url",
            api.url,
            "--json",
            cwd=tmp_path,
            secret=secret,
        )
    )
    assert set(enrolment) == {"device_id", "enrollment_code", "expires_at", "pairing_uri"}
    expires = datetime.fromisoformat(enrolment["expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    query = parse_qs(urlsplit(enrolment["pairing_uri"]).query)
    assert enrolment["pairing_uri"].startswith("doorcheck://pair?")
    assert query == {"server": [api.url], "code": [enrolment["enrollment_code"]]}

    token = enroll(api, enrolment["enrollment_code"])
    device_time = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    pushed = httpx.post(
        f"{api.url}/v1/sync/push",
        json={"device_time": device_time},
        headers={"Authorization": f"Bearer {token}", "X-Doorcheck-App-Version": "9.8.7"},
    )
    assert pushed.status_code == 200, pushed.text
    listed = by_id(ok(run("devices", "list", *local, "--json", cwd=tmp_path, secret=secret)))
    device = listed[enrolment["device_id"]]
    assert device["status"] == "active" and device["name"] == "Phone"
    assert device["app_version"] == "9.8.7" and 2000 < device["clock_offset_ms"] < 4000

    shown = run("devices", "create", "--name", "Gate <B>", *local, cwd=tmp_path, secret=secret)
    assert shown.returncode == 0, shown.stderr
    second = urlsplit(decode_terminal_qr(shown.stdout)[0])
    assert second.scheme == "doorcheck" and second.netloc == "pair"
    assert parse_qs(second.query)["server"] == ["http://127.0.0.1:8000"]
    assert parse_qs(second.query)["code"][0] in shown.stdout
    table = run("devices", "list", *local, cwd=tmp_path, secret=secret)
    assert table.returncode == 0 and enrolment["device_id"] in table.stdout
    offset = f"{device['clock_offset_ms'] / 1000:+.1f} s"
    for text in ("active", "pending", "Gate <B>", "9.8.7", offset, "never"):
        assert text in table.stdout, table.stdout

    api.new_org("Other")
    several = run("devices", "list", *local, cwd=tmp_path, secret=secret)
    one_line_error(several, 1, "--org", init["organization_id"])
    only = ok(
        run(
            "devices",
            "list",
            *local,
            "--org",
            init["organization_id"],
            "--json",
            cwd=tmp_path,
            secret=secret,
        )
    )
    assert len(only) == 2
    missing = run("devices", "list", *local, "--org", "org_nope", cwd=tmp_path, secret=secret)
    one_line_error(missing, 1, "org_nope")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_create_list_revoke_over_http(api: Api, org: Org, tmp_path: Path) -> None:
    remote = ("--server", api.url + "/", "--api-key", org.admin_key)
    enrolment = ok(run("devices", "create", "--name", "Gate A", *remote, "--json", cwd=tmp_path))
    assert parse_qs(urlsplit(enrolment["pairing_uri"]).query)["server"] == [api.url]
    token = enroll(api, enrolment["enrollment_code"])
    scanner = org.as_key(token)
    assert scanner.get("/v1/sync/events").status_code == 200

    with session_scope(api.app.state.engine) as session:  # more than one page of 100
        for n in range(105):
            create_enrolment(
                session,
                organization_id=org.id,
                name=f"Spare {n}",
                server_url=api.url,
                secret=api.app.state.secret,
            )
    by_env = run(
        "devices",
        "list",
        "--server",
        api.url,
        "--json",
        cwd=tmp_path,
        env={"DOORCHECK_API_KEY": org.admin_key},
    )
    listed = by_id(ok(by_env))
    assert len(listed) == 106 and listed[enrolment["device_id"]]["status"] == "active"

    revoked = run("devices", "revoke", enrolment["device_id"], *remote, cwd=tmp_path)
    assert revoked.returncode == 0 and enrolment["device_id"] in revoked.stdout, revoked.stderr
    assert scanner.get("/v1/sync/events").status_code == 401
    scanner.close()
    table = run("devices", "list", *remote, cwd=tmp_path)
    assert table.returncode == 0 and "revoked" in table.stdout and "Devices (106)" in table.stdout

    one_line_error(run("devices", "revoke", "dev_nope", *remote, cwd=tmp_path), 1, "dev_nope")
    reader = ("--server", api.url, "--api-key", org.key("read"))
    one_line_error(run("devices", "list", *reader, cwd=tmp_path), 1, "insufficient_scope")
    bad_key = ("--server", api.url, "--api-key", "dk_live_nope")
    one_line_error(run("devices", "list", *bad_key, cwd=tmp_path), 1, "invalid_api_key")


def test_usage_errors_and_unreachable_things(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'door.db'}"
    assert run("init", "--org", "Acme", "--db", db, cwd=tmp_path).returncode == 0
    name = ("--name", "Gate")
    for args in (
        ("devices", "create", *name),
        ("devices", "create", *name, "--db", db, "--server", "http://x", "--api-key", "k"),
        ("devices", "list", "--server", "http://127.0.0.1:9"),
        ("devices", "create", *name, "--server", "http://x", "--api-key", "k", "--org", "o"),
        ("devices", "create", "--name", "  ", "--db", db),
        ("devices", "create", *name, "--db", db, "--server-url", "127.0.0.1:8000"),
    ):
        one_line_error(run(*args, cwd=tmp_path), 2, "see --help")
    one_line_error(
        run("devices", "list", "--server", "http://127.0.0.1:9", "--api-key", "k", cwd=tmp_path),
        1,
        "cannot reach the server",
    )
    one_line_error(run("devices", "revoke", "dev_nope", "--db", db, cwd=tmp_path), 1, "dev_nope")
    one_line_error(
        run("devices", "list", "--db", f"sqlite:///{tmp_path / 'no.db'}", cwd=tmp_path),
        1,
        "no database",
    )
    no_secret = run(
        "devices", "create", *name, "--db", db, cwd=tmp_path, env={"DOORCHECK_SECRET_KEY": ""}
    )
    one_line_error(no_secret, 1, "DOORCHECK_SECRET_KEY")
    assert not (tmp_path / "secret.key").exists()
    empty = run("devices", "list", "--db", db, cwd=tmp_path)
    assert empty.returncode == 0 and "No devices yet" in empty.stdout
