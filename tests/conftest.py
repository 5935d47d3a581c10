"""Fixtures every suite shares: real databases (a SQLite file, a fresh PostgreSQL database) and a
real uvicorn server on a loopback port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

# Gates keep their data key in a keyring (scanner_app.vault): the suite's is a file outside every
# gate folder, shared with the CLI's subprocesses through the environment.
_ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.support_keyring.TestKeyring"
os.environ.setdefault(
    "DOORCHECK_TEST_KEYRING", str(Path(tempfile.mkdtemp(prefix="dc-keyring-")) / "keys.json")
)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p
)

PG_ADMIN_URL = os.environ.get("DOORCHECK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def pg_available() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {problem}")
    pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {problem}")


def make_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"dc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'doorcheck.db'}"
        return
    request.getfixturevalue("pg_available")
    name, url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app: object, port: int | None = None) -> LiveServer:
    """Run an ASGI app under uvicorn in a thread on a loopback port; waits until it answers."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",  # type: ignore[arg-type]
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, server, thread)
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


DOORCHECK = str(Path(sys.executable).with_name("doorcheck"))


def all_codes(client: httpx.Client, event_id: str) -> list[str]:
    """Every attendee's `qr` string of an event, page by page, through the API."""
    codes: list[str] = []
    cursor = None
    while True:
        page = client.get(
            f"/v1/events/{event_id}/attendees",
            params={"limit": 100, **({"cursor": cursor} if cursor else {})},
        ).json()
        codes += [a["qr"] for a in page["data"]]
        if not page["has_more"]:
            return codes
        cursor = page["next_cursor"]


# Debian's Chromium, headless in a container: what the e2e tests and bench/bench_ui.py pass it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def init_org(db_url: str, env: dict[str, str], cwd: Path, name: str = "Acme") -> str:
    """`doorcheck init --json` on `db_url`: answers the new organization's admin API key."""
    done = subprocess.run(
        [DOORCHECK, "init", "--org", name, "--db", db_url, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["api_key"])


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until `url` answers 200; if `proc` exits first, raise with the end of its `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def stop_process(
    proc: subprocess.Popen[bytes], timeout: float = 20, *, terminate: bool = True
) -> int:
    """SIGTERM (if still running; `terminate=False`: it was sent already), then SIGKILL after
    `timeout` seconds; its exit code."""
    if terminate and proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def start_doorcheck_server(
    db_url: str, port: int, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """`doorcheck server` in its own process on a loopback port; waits until /readyz answers.
    Its stderr goes to a temporary file (a pipe nobody reads would stop the server once full)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [DOORCHECK, "server", "--port", str(port), "--db", db_url],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    log.seek(0)
    raise RuntimeError(f"server did not start: {log.read().decode(errors='replace')}")
