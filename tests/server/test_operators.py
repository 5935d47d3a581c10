"""For operators (SPEC section 13), against a real `doorcheck server --workers 2`: the listening
URL is printed, `--log-format json` writes lines that parse, `--access-log` logs each request
with its id, every answer carries `X-Request-Id` (the client's sane one, else a new one), and
`/metrics` adds up both workers' scans, pushes and requests (parsed with prometheus_client)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.conftest import DOORCHECK, free_port, init_org, stop_process, wait_http
from tests.server.conftest import Api, Org, assert_error, setup_event

SCANS = "/v1/checkpoints/{checkpoint_id}/scans"


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORCHECK_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"DOORCHECK_SECRET_KEY": "ops-" + "s" * 40, "DOORCHECK_DATA_DIR": str(folder)})
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Org, Path, Path]]:
    """`doorcheck server --workers 2 --access-log --log-format json` on a SQLite file, with its
    metrics folder given (to see which processes wrote), and an organization's admin key."""
    db, env = f"sqlite:///{tmp_path}/ops.db", _environment(tmp_path)
    key = init_org(db, env, tmp_path, "Ops")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port, log = free_port(), tmp_path / "server.log"
    command = [DOORCHECK, "server", "--db", db, "--port", str(port), "--workers", "2"]
    command += ["--access-log", "--log-format", "json"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", proc, log)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        yield url, Org("org", key, client), log, metrics_dir
        client.close()
    finally:
        stop_process(proc, 30)


def _metrics(url: str) -> dict[str, list[Any]]:
    text = httpx.get(f"{url}/metrics", timeout=10)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text.text):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def _total(families: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families.get(name, [])
        if s.name == f"{name}_total" and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_two_workers_count_into_one_metrics_page(
    served: tuple[str, Org, Path, Path],
) -> None:
    url, org, log, metrics_dir = served
    setup = setup_event(org)
    gate = setup["gate_a"]["id"]
    codes = []
    for n in range(3):
        made = org.client.post(
            f"/v1/events/{setup['id']}/attendees",
            json={"first_name": f"A{n}", "last_name": "B", "ticket_type": "general"},
        )
        assert made.status_code == 201, made.text
        codes.append(made.json()["qr"])
    headers = {"Authorization": f"Bearer {org.admin_key}"}
    scans = 0
    # a new connection each time, so both workers take requests
    while scans < 12 or len({p.name.split("_")[-1] for p in metrics_dir.glob("counter_*")}) < 2:
        assert scans < 200, "one worker took every connection"
        answer = httpx.post(
            f"{url}/v1/checkpoints/{gate}/scans",
            json={"code": codes[scans % 3], "direction": "in"},
            headers=headers,
        )
        assert answer.status_code == 200
        scans += 1
    unknown = httpx.post(
        f"{url}/v1/checkpoints/{gate}/scans", json={"code": "nope"}, headers=headers
    )
    assert unknown.json()["verdict"]["reason"] == "unknown_code"
    now = datetime.now(UTC).isoformat()
    reading = {
        "id": str(uuid.uuid4()),
        "event_id": setup["id"],
        "checkpoint_id": setup["gate_b"]["id"],
        "code": "nope-offline",
        "direction": "in",
        "scanned_at": now,
        "hlc": f"{int(time.time() * 1000):015d}-00001-dev",
        "device_verdict": {"status": "denied", "reason": "unknown_code"},
    }
    pushed = org.client.post(
        "/v1/sync/push", json={"device_time": now, "scans": [reading], "registrations": []}
    )
    assert pushed.status_code == 200 and pushed.json()["results"][0]["status"] == "applied"
    again = org.client.post(
        "/v1/sync/push", json={"device_time": now, "scans": [reading], "registrations": []}
    )
    assert again.json()["results"][0]["status"] == "duplicate"

    families = _metrics(url)
    online = _total(families, "doorcheck_scans", source="online")
    assert online == scans + 1
    assert _total(families, "doorcheck_scans", source="online", reason="unknown_code") == 1
    assert _total(families, "doorcheck_scans", source="offline", reason="unknown_code") == 1
    assert _total(families, "doorcheck_push_items", result="applied") == 1
    assert _total(families, "doorcheck_push_items", result="duplicate") == 1
    assert _total(families, "doorcheck_http_requests", route=SCANS, status="200") == scans + 1
    latency = [
        s
        for s in families["doorcheck_http_request_duration_seconds"]
        if s.name.endswith("_count") and s.labels["route"] == SCANS
    ]
    assert sum(s.value for s in latency) == scans + 1
    backlog = {s.labels["stage"]: s.value for s in families["doorcheck_webhook_backlog"]}
    assert backlog == {"fanout": 0, "delivery": 0}
    labels = {v for samples in families.values() for s in samples for v in s.labels.values()}
    assert not [v for v in labels if gate in v or "evt_" in v]  # templates, never ids

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(p.get("url") == url for p in parsed), lines[:5]
    access = [p for p in parsed if p["logger"] == "doorcheck.access"]
    scanned = [p for p in access if p.get("route") == SCANS]
    assert len(scanned) == scans + 1
    assert all(p["request_id"].startswith("req_") and p["status"] == 200 for p in scanned)


def test_request_ids_are_echoed_or_made(served: tuple[str, Org, Path, Path]) -> None:
    url, org, log, _ = served
    mine = org.client.get("/v1/events", headers={"X-Request-Id": "lb-4f1c:77"})
    assert mine.headers["x-request-id"] == "lb-4f1c:77"
    for insane in ("has space", "x" * 200, 'quote"d', ""):
        answer = org.client.get("/v1/events", headers={"X-Request-Id": insane})
        made = answer.headers["x-request-id"]
        assert made.startswith("req_") and made != insane
    missing = httpx.get(f"{url}/v1/nowhere")
    assert missing.status_code == 404 and missing.headers["x-request-id"].startswith("req_")
    assert _total(_metrics(url), "doorcheck_http_requests", route="unmatched", status="404") >= 1
    time.sleep(0.3)
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(
        p.get("request_id") == "lb-4f1c:77" and p.get("path") == "/v1/events" for p in logged
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_metrics_from_afar_need_an_admin_key(api: Api, org: Org) -> None:
    with TestClient(api.app, client=("10.1.2.3", 5000)) as client:  # not a loopback client
        assert_error(client.get("/metrics"), 401, "invalid_api_key")
        reader = {"Authorization": f"Bearer {org.key('read')}"}
        assert_error(client.get("/metrics", headers=reader), 403, "insufficient_scope")
        admin = client.get("/metrics", headers={"Authorization": f"Bearer {org.admin_key}"})
        assert admin.status_code == 200 and "doorcheck_http_requests_total" in admin.text
    api.app.state.settings.metrics_public = True
    try:
        with TestClient(api.app, client=("10.1.2.3", 5000)) as client:
            assert client.get("/metrics").status_code == 200
    finally:
        api.app.state.settings.metrics_public = False
