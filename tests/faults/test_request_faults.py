"""Whatever a client sends, the server answers with the error envelope and keeps the connection
usable; values of the wrong JSON kind are refused; proxy headers are not trusted unless
configured (SPEC section 10; issue 17 findings 4, 7 and 8)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, init_org, start_doorcheck_server, stop_process
from tests.server.conftest import Api, Org, assert_error, setup_event


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request on an open connection and read one whole response."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        body += chunk
    return status, headers, body


def _request(method: str, path: str, key: str, body: bytes = b"") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("path", "wrap"),
    [
        ("/v1/checkpoints/{cp}/scans", lambda d: b'{"code": ' + d + b"}"),
        ("/v1/events", lambda d: b'{"name": ' + d + b"}"),
        ("/v1/sync/push", lambda d: b'{"device_time": ' + d + b"}"),
    ],
)
def test_json_of_any_depth_is_refused_and_the_connection_stays_usable(
    api: Api, org: Org, path: str, wrap: Any
) -> None:
    venue = setup_event(org)
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        target = path.replace("{cp}", venue["gate_a"]["id"])
        status, _, body = _exchange(
            sock, _request("POST", target, org.admin_key, wrap(_deep(100_000)))
        )
        assert status in (400, 422), body[:300]
        assert json.loads(body)["error"]["code"] in ("bad_request", "validation_error")
        status, _, body = _exchange(sock, _request("GET", "/v1/events", org.admin_key))
        assert status == 200, body[:300]


def test_an_unexpected_failure_answers_500_and_keeps_the_connection(api: Api, org: Org) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    api.app.add_api_route("/test-broken", broken, methods=["GET"])
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        status, headers, body = _exchange(sock, _request("GET", "/test-broken", org.admin_key))
        assert status == 500 and json.loads(body)["error"]["code"] == "internal_error"
        assert b"Traceback" not in body and "a bug" not in body.decode()
        assert headers.get("connection", "").lower() != "close"
        status, _, _ = _exchange(sock, _request("GET", "/v1/events", org.admin_key))
        assert status == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("zones", {"name": "Z", "capacity": False}, "capacity"),
        ("zones", {"name": "Z", "capacity": "12"}, "capacity"),
        ("ticket-types", {"name": "T", "slug": "t", "valid_from": 0}, "valid_from"),
        ("ticket-types", {"name": "T", "slug": "t", "is_vip": 0}, "is_vip"),
        ("checkpoints", {"name": "C", "active": 1}, "active"),
        ("checkpoints", {"name": "C", "max_entries": True}, "max_entries"),
        ("checkpoints", {"name": "C", "open_from": 1767225600}, "open_from"),
    ],
)
def test_no_value_changes_its_kind(
    api: Api, org: Org, path: str, body: dict[str, Any], field: str
) -> None:
    event = org.client.post("/v1/events", json={"name": "E", "slug": "e"}).json()
    answer = org.client.post(f"/v1/events/{event['id']}/{path}", json=body)
    error = assert_error(answer, 422, "validation_error")
    assert any(d["field"] == field for d in error["details"]), error


def test_online_scan_refuses_a_nul_in_its_operator(api: Api, org: Org) -> None:
    venue = setup_event(org)
    answer = org.client.post(
        f"/v1/checkpoints/{venue['gate_a']['id']}/scans",
        json={"code": "NOBODY", "operator": "Sam\x00"},
    )
    assert_error(answer, 422, "validation_error")


@pytest.mark.e2e
@pytest.mark.parametrize("trusted", [False, True])
def test_x_forwarded_for_is_trusted_only_from_configured_proxies(
    tmp_path: Path, trusted: bool
) -> None:
    db_url = f"sqlite:///{tmp_path / 'doorcheck.db'}"
    env = {**os.environ, "DOORCHECK_DATA_DIR": str(tmp_path)}
    if trusted:
        env["DOORCHECK_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    init_org(db_url, env, tmp_path)
    port = free_port()
    proc = start_doorcheck_server(db_url, port, env, tmp_path)
    try:
        statuses = [
            httpx.post(
                f"http://127.0.0.1:{port}/v1/devices/enroll",
                json={"code": "NOPE-NOPE-NOPE-NOPE", "name": "x"},
                headers={"X-Forwarded-For": f"10.0.{n // 250}.{n % 250 + 1}"},
            ).status_code
            for n in range(32)
        ]
    finally:
        stop_process(proc)
    if trusted:  # each spoofed address counted apart: the operator said the proxy is loopback
        assert 429 not in statuses, statuses
    else:  # one client, whatever it claims: the limit (30 a minute) holds
        assert statuses[-1] == 429 and statuses[:30].count(429) == 0, statuses
