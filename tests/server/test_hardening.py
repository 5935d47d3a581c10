"""What the API does with bad, big, fast and hostile requests: the error envelope everywhere,
no-store caching, body limits, rate limits, list pagination, probes, OpenAPI, and hostile codes
at the online scan endpoint."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from sync_server.app import create_app
from sync_server.migrate import upgrade
from tests.conftest import serve
from tests.server.conftest import (
    Api,
    Org,
    add_attendee,
    api_routes,
    assert_error,
    make_settings,
    scan,
    setup_event,
)

JSON = {"content-type": "application/json"}


@contextmanager
def custom_api(tmp_path: Path, app: FastAPI | None = None, **settings: Any) -> Iterator[Api]:
    """The app with its own settings on a SQLite file under a real uvicorn."""
    if app is None:
        app = create_app(make_settings(f"sqlite:///{tmp_path / 'custom.db'}", tmp_path, **settings))
    upgrade(app.state.engine)
    live = serve(app)
    try:
        yield Api(app, live, app.state.settings)
    finally:
        live.stop()
        app.state.engine.dispose()


# --- the error envelope ----------------------------------------------------------------------


def test_error_envelope_everywhere(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    assert_error(c.get("/nope"), 404, "not_found")
    assert_error(c.get("/v1/nope/deeper"), 404, "not_found")
    assert_error(httpx.get(f"{api.url}/v1/unknown"), 404, "not_found")  # without a key too
    not_allowed = assert_error(c.put("/v1/events", json={}), 405, "method_not_allowed")
    assert not_allowed["message"]
    assert_error(c.delete("/v1/events"), 405, "method_not_allowed")

    for raw in (b'{"name": ', b"{'name': 'x'}", b"\xff\xfe", b"", b"nul\x00", b"[1, 2"):
        error = assert_error(
            c.post("/v1/events", content=raw, headers=JSON), 422, "validation_error"
        )
        assert error["details"], raw
    error = assert_error(
        c.post("/v1/events", content=b'{"name": ', headers=JSON), 422, "validation_error"
    )
    assert error["details"][0]["code"] == "json_invalid"
    for body in ([], "x", None, 5, [{"name": "x", "slug": "x"}]):
        assert_error(c.post("/v1/events", json=body), 422, "validation_error")
    wrong = {"name": 5, "slug": ["x"], "capacity": "lots"}
    typed = assert_error(c.post("/v1/events", json=wrong), 422, "validation_error")
    assert {d["field"] for d in typed["details"]} == {"name", "slug", "capacity"}
    assert all(set(d) == {"field", "code", "message"} for d in typed["details"])
    # A body in another media type is not JSON.
    assert_error(
        c.post(
            "/v1/events",
            content=b"name=x&slug=y",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        422,
        "validation_error",
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    response = c.post("/v1/events", content=deep, headers=JSON)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("bad_request", "validation_error")

    # Hostile text in paths and query strings is a clean 404 or 422, on every engine.
    for method, path in [
        ("GET", "/v1/events/%00"),
        ("GET", "/v1/events/evt_%00"),
        ("GET", f"/v1/events/{'e' * 10_000}"),
        ("GET", "/v1/events/%F0%9F%8E%9F"),
        ("GET", "/v1/events/%ED%A0%80"),
        ("GET", "/v1/events/'%20OR%201=1%20--"),
        ("GET", f"/v1/events/{eid}/attendees/%00"),
        ("PATCH", f"/v1/events/{eid}/zones/%00%00"),
        ("POST", "/v1/checkpoints/%00/scans"),
        ("DELETE", "/v1/api-keys/%00"),
        ("DELETE", f"/v1/api-keys/{'k' * 5000}"),
    ]:
        response = c.request(method, path, json={"code": "x"} if method == "POST" else None)
        assert response.status_code in (404, 422), (path, response.text)
        assert response.json()["error"]["code"] in ("not_found", "validation_error")
    for path, params in [
        ("/v1/events", {"status": "\x00"}),
        ("/v1/events", {"cursor": "\x00"}),
        (f"/v1/events/{eid}/attendees", {"q": "a\x00b"}),
        (f"/v1/events/{eid}/attendees", {"tag": "\x00"}),
        (f"/v1/events/{eid}/attendees", {"ticket_type": "\x00"}),
        (f"/v1/events/{eid}/scans", {"checkpoint": "\x00", "status": "\x00"}),
        (f"/v1/events/{eid}/scans", {"attendee": "\x00", "device": "\x00"}),
        ("/v1/events", {"limit": "9" * 40}),
    ]:
        response = c.get(path, params=params)
        assert response.status_code in (200, 422), (path, params, response.text)
        assert response.json().get("object") == "list" or response.json()["error"]["code"] == (
            "validation_error"
        )


def test_unhandled_errors_are_an_envelope_without_a_trace(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'boom.db'}", tmp_path))

    def boom() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    app.add_api_route("/v1/boom", boom, methods=["GET"])
    with custom_api(tmp_path, app) as live:
        response = httpx.get(f"{live.url}/v1/boom")
        error = assert_error(response, 500, "internal_error")
        assert "secret" not in response.text and "RuntimeError" not in response.text
        assert error["details"] == []
        # The server goes on answering.
        assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_cache_control_on_every_response(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    person = add_attendee(org, s["id"])
    zone = c.post(f"/v1/events/{s['id']}/zones", json={"name": "Z"}).json()
    responses = [
        c.get("/v1/events"),
        c.post("/v1/events", json={"name": "N", "slug": "n"}),
        c.delete(f"/v1/events/{s['id']}/zones/{zone['id']}"),
        c.get(f"/v1/events/{s['id']}/attendees/{person['id']}/qr.png"),
        c.post(f"/v1/checkpoints/{s['gate_a']['id']}/scans", json={"code": person["qr"]}),
        c.get(f"/v1/events/{s['id']}/stats"),
        c.get("/v1/events/evt_missing"),
        c.post("/v1/events", json={}),
        httpx.get(f"{api.url}/v1/events"),
        httpx.get(f"{api.url}/healthz"),
        httpx.get(f"{api.url}/readyz"),
        c.put("/v1/events"),
    ]
    assert {r.status_code for r in responses} == {200, 201, 204, 401, 404, 405, 422}
    for response in responses:
        assert response.headers["cache-control"] == "private, no-store", response.request.url
        if response.status_code != 204:
            assert response.content, response.request.url  # never an empty body


# --- limits ----------------------------------------------------------------------------------


def test_body_limit(tmp_path: Path) -> None:
    limit = 2_000
    with custom_api(tmp_path, max_body_bytes=limit) as live:
        org = live.new_org()
        c = org.client

        def event_body(size: int) -> bytes:
            head = b'{"name": "Big", "slug": "big", "pad": "'
            return head + b"x" * (size - len(head) - 2) + b'"}'

        declared = c.post("/v1/events", content=event_body(limit + 1), headers=JSON)
        error = assert_error(declared, 413, "payload_too_large")
        assert str(limit) in error["message"]
        # At the limit the body is read (and refused for its unknown field, not its size).
        assert_error(
            c.post("/v1/events", content=event_body(limit), headers=JSON), 422, "validation_error"
        )

        def chunks(total: int) -> Iterator[bytes]:
            body = event_body(total)
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        streamed = c.post("/v1/events", content=chunks(limit * 3), headers=JSON)
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413, "payload_too_large")
        small = json.dumps({"name": "Small", "slug": "small"}).encode()
        ok = c.post("/v1/events", content=iter([small[:10], small[10:]]), headers=JSON)
        assert ok.status_code == 201, ok.text
        # Scans are limited the same way.
        s = setup_event(org)
        big_scan = c.post(
            f"/v1/checkpoints/{s['gate_a']['id']}/scans", json={"code": "x" * (limit * 2)}
        )
        assert_error(big_scan, 413, "payload_too_large")
        assert c.get("/v1/events").status_code == 200  # the server is fine afterwards
        c.close()


def test_rate_limit(tmp_path: Path) -> None:
    with custom_api(tmp_path, rate_limit_per_minute=5) as live:
        org = live.new_org()
        other_key = live.raw_key(org.id, ["read"])
        if 60 - time.time() % 60 < 5:  # keep all of it inside one window
            time.sleep(6)
        seen = []
        for _ in range(5):
            response = org.client.get("/v1/events")
            assert response.status_code == 200, response.text
            seen.append(int(response.headers["x-ratelimit-remaining"]))
            assert response.headers["x-ratelimit-limit"] == "5"
            assert 0 < int(response.headers["x-ratelimit-reset"]) <= 61
        assert seen == [4, 3, 2, 1, 0]
        refused = org.client.get("/v1/events")
        error = assert_error(refused, 429, "rate_limited")
        assert error["message"]
        assert 0 < int(refused.headers["retry-after"]) <= 61
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert_error(
            org.client.post("/v1/events", json={"name": "x", "slug": "x"}), 429, "rate_limited"
        )
        # Limits are per key.
        with org.as_key(other_key) as other:
            assert other.get("/v1/events").status_code == 200
        # Probes are not rate limited.
        assert httpx.get(f"{live.url}/healthz").status_code == 200
        org.client.close()


# --- lists -----------------------------------------------------------------------------------


def _walk(client: httpx.Client, path: str, limit: int, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        response = client.get(
            path,
            params={"limit": limit, "cursor": cursor, **params}
            if cursor
            else {"limit": limit, **params},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"object", "data", "has_more", "next_cursor"}
        assert body["object"] == "list"
        pages.append([row["id"] for row in body["data"]])
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return pages
        cursor = body["next_cursor"]
        assert len(pages) < 100


def test_cursor_pagination(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid = s["id"]
    base = f"/v1/events/{eid}/attendees"
    made = [
        add_attendee(org, eid, first_name=f"P{n}", tags=["odd"] if n % 2 else [])["id"]
        for n in range(53)
    ]
    newest_first = list(reversed(made))
    pages = _walk(c, base, 10)
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 3]
    assert [i for p in pages for i in p] == newest_first  # no duplicates, no gaps, in order
    assert [i for p in _walk(c, base, 100) for i in p] == newest_first
    assert [i for p in _walk(c, base, 7, tag="odd") for i in p] == [
        i for n, i in reversed(list(enumerate(made))) if n % 2
    ]
    default = c.get(base).json()
    assert len(default["data"]) == 25 and default["has_more"]
    one = c.get(base, params={"limit": 1}).json()
    assert [r["id"] for r in one["data"]] == newest_first[:1]
    # A row deleted mid-walk neither repeats nor hides the others.
    first = c.get(base, params={"limit": 10}).json()
    c.delete(f"{base}/{newest_first[10]}")
    rest = c.get(base, params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in rest["data"]] == newest_first[11:21]

    # The scan log pages by arrival.
    for n in range(23):
        scan(c, s["gate_b"]["id"], f"NOPE-{n}")
    log = [i for p in _walk(c, f"/v1/events/{eid}/scans", 5) for i in p]
    assert len(log) == len(set(log)) == 23

    for limit in (0, -1, 101, 10**6, "ten", ""):
        assert_error(c.get(base, params={"limit": limit}), 422, "validation_error")
    assert c.get(base, params={"limit": 100}).status_code == 200
    naive = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00", "att_x"]).encode())
    for cursor in (
        "garbage",
        "!!!",
        "e30",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"null").decode(),
        naive.decode().rstrip("="),
        base64.urlsafe_b64encode(b'["not a time", "x"]').decode(),
        "A" * 600,
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        "%00",
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00Z", "\\u0000"]').decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00Z", "\\udc80"]').decode(),
    ):
        for path in (base, "/v1/events", f"/v1/events/{eid}/scans", f"/v1/events/{eid}/zones"):
            error = assert_error(c.get(path, params={"cursor": cursor}), 422, "validation_error")
            assert error["details"] == [] or error["details"][0]["field"] == "cursor"


# --- probes and docs -------------------------------------------------------------------------


def test_probes_openapi_and_docs(api: Api) -> None:
    health = httpx.get(f"{api.url}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"
    assert ready.json()["database"] in ("sqlite", "postgresql")

    spec = httpx.get(f"{api.url}/openapi.json")
    assert spec.status_code == 200
    operations = [
        (method.upper(), path, op.get("operationId"))
        for path, item in spec.json()["paths"].items()
        for method, op in item.items()
    ]
    ids = [op for _, _, op in operations]
    assert all(ids) and len(ids) == len(set(ids)), ids
    assert sorted(operations) == sorted(api_routes(api.app))  # every route is documented
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert "openapi.json" in docs.text


def test_readyz_says_when_the_database_is_gone(tmp_path: Path) -> None:
    gone = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    app = create_app(make_settings(gone, tmp_path))
    live = serve(app)
    try:
        assert httpx.get(f"{live.url}/healthz").status_code == 200
        response = httpx.get(f"{live.url}/readyz", timeout=30)
        error = assert_error(response, 503, "unavailable")
        assert "127.0.0.1" not in response.text and "nobody" not in response.text
        assert error["message"]
    finally:
        live.stop()
        app.state.engine.dispose()


# --- hostile codes at the online scan endpoint -----------------------------------------------


def _flip(code: str, index: int) -> str:
    """`code` with the base32 character at `index` replaced by another valid one."""
    replacement = "B" if code[index] == "A" else "A"
    return code[:index] + replacement + code[index + 1 :]


def test_hostile_codes_at_the_scan_endpoint(api: Api, org: Org) -> None:
    c = org.client
    s = setup_event(org)
    eid, gate = s["id"], s["gate_a"]["id"]
    person = add_attendee(org, eid)
    qr = person["qr"]
    sibling = c.post("/v1/events", json={"name": "Sibling", "slug": "sibling"}).json()["id"]
    c.post(f"/v1/events/{sibling}/ticket-types", json={"name": "G", "slug": "general"})
    cousin = add_attendee(org, sibling)
    rival = api.new_org("Rival")
    rival_event = setup_event(rival)
    stranger = add_attendee(rival, rival_event["id"])
    signature_start = 3 + 56  # "DC1" + base32 of the 35-byte payload
    cases: list[tuple[str, str]] = [
        ("x" * 10_240, "malformed_code"),
        ("DC1" + "A" * 10_000, "malformed_code"),
        ("abc\x00def", "malformed_code"),
        ("\x00", "malformed_code"),
        (qr + "\x00", "malformed_code"),
        ("\x1b[31mred\x1b[0m", "malformed_code"),
        ("line\u0085break", "malformed_code"),
        ("", "malformed_code"),
        ("   \r\n\t", "malformed_code"),
        ("🎟️🎉", "unknown_code"),
        ("' OR 1=1 --", "unknown_code"),
        ("'; DROP TABLE attendees; --", "unknown_code"),
        ("%", "unknown_code"),
        ("_", "unknown_code"),
        (person["id"], "unknown_code"),
        ("DC1", "malformed_code"),
        ("DC1!!!!", "malformed_code"),
        (qr[:-10], "malformed_code"),
        (qr + "AAAA", "malformed_code"),
        (_flip(qr, signature_start + 20), "invalid_signature"),
        (_flip(qr, 3 + 25), "invalid_signature"),  # inside the attendee id
        (_flip(qr, 3 + 5), "invalid_signature"),  # inside the event digest
        (cousin["qr"], "wrong_event"),
        (stranger["qr"], "invalid_signature"),
    ]
    for code, reason in cases:
        response = c.post(f"/v1/checkpoints/{gate}/scans", json={"code": code})
        assert response.status_code == 200, (code[:40], response.text)
        result = response.json()
        assert result["verdict"]["status"] == "denied", code[:40]
        assert result["verdict"]["reason"] == reason, (code[:40], result["verdict"])
        assert result["recorded"] and result["scan_id"]
        assert result["attendee"] is None or reason == "wrong_event"
    # Raw JSON a client library would refuse to send: a lone surrogate is not text at all.
    raw = c.post(f"/v1/checkpoints/{gate}/scans", content=b'{"code": "\\udc80x"}', headers=JSON)
    assert {d["field"] for d in assert_error(raw, 422, "validation_error")["details"]} == {"code"}
    bad_operator = c.post(
        f"/v1/checkpoints/{gate}/scans",
        content=b'{"code": "x", "operator": "\\ud800\\u0000"}',
        headers=JSON,
    )
    assert_error(bad_operator, 422, "validation_error")
    for body in (
        {"code": None},
        {"code": 5},
        {"code": ["x"]},
        {},
        {"code": "x" * 100_001},
        {"code": "x", "id": "short"},
        {"code": "x", "id": "has spaces in it"},
        {"code": "x", "scanned_at": "noon"},
        {"code": "x", "direction": "up"},
        {"code": "x", "scanned_at": "0001-01-01T00:00:00+14:00"},
        {"code": "x", "extra": 1},
    ):
        assert_error(c.post(f"/v1/checkpoints/{gate}/scans", json=body), 422, "validation_error")

    # Every hostile reading is in the log, printable and at most 512 characters long.
    log = c.get(f"/v1/events/{eid}/scans", params={"limit": 100}).json()["data"]
    assert len(log) == len(cases)
    assert all(r["status"] == "denied" and len(r["code"]) <= 512 for r in log)
    assert all(ch.isprintable() for r in log for ch in r["code"])
    denied = c.get(f"/v1/events/{eid}/stats").json()["denied_by_reason"]
    assert denied == {
        "malformed_code": 13,
        "unknown_code": 6,
        "invalid_signature": 4,
        "wrong_event": 1,
    }
    # After all that, the real ticket still works and nothing was dropped.
    assert scan(c, gate, qr)["verdict"]["status"] == "accepted"
    assert rival.client.get(f"/v1/events/{rival_event['id']}/attendees").json()["data"]
    rival.client.close()
