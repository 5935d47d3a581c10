"""The server SIGKILLed in the middle of a push, restarted, the same push retried: every item
is recorded exactly once (items commit in groups; a group is all or nothing)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import all_codes, free_port, init_org, start_doorcheck_server

pytestmark = pytest.mark.e2e


def test_push_survives_a_server_killed_mid_batch(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DOORCHECK_SECRET_KEY": "crash-test-" + "k" * 32}
    key = init_org(db_url, env, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_doorcheck_server(db_url, port, env, tmp_path)
    try:
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        eid = admin.post("/v1/events", json={"name": "Crash", "slug": "crash"}).json()["id"]
        admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "G", "slug": "general"})
        zone = admin.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
        cp = admin.post(
            f"/v1/events/{eid}/checkpoints", json={"name": "Gate", "zone_id": zone["id"]}
        ).json()
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"P{i},K,p{i}@example.com,general\n" for i in range(3000)
        )
        assert (
            admin.post(
                f"/v1/events/{eid}/attendees/import",
                content=rows,
                headers={"Content-Type": "text/csv"},
            ).status_code
            == 200
        )
        codes = all_codes(admin, eid)
        enrolment = admin.post("/v1/devices", json={"name": "Gate"}).json()
        token = httpx.post(
            f"{url}/v1/devices/enroll", json={"code": enrolment["enrollment_code"]}
        ).json()["device_token"]
        now = datetime.now(UTC).isoformat()
        items = [
            {
                "id": str(uuid.uuid4()),
                "event_id": eid,
                "checkpoint_id": cp["id"],
                "code": c,
                "direction": "in",
                "scanned_at": now,
                "hlc": f"{i:015d}-00000-d",
                "device_verdict": {"status": "accepted", "reason": "ok"},
            }
            for i, c in enumerate(codes)
        ]
        batch = {"device_time": now, "scans": items}
        outcome: dict[str, Any] = {}

        def push() -> None:
            try:
                outcome["response"] = httpx.post(
                    f"{url}/v1/sync/push",
                    json=batch,
                    timeout=120,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=push)
        thread.start()
        # Kill once part of the batch is committed (watch the log grow), not before, not after.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            total = admin.get(f"/v1/events/{eid}/stats").json()["checkpoints"][0]["entries"]
            if total >= 250:
                break
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        thread.join(30)
        assert "error" in outcome, "the push should have been cut off by the kill"
        server = start_doorcheck_server(db_url, port, env, tmp_path)
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        partial = admin.get(f"/v1/events/{eid}/stats").json()["checkpoints"][0]["entries"]
        assert 0 < partial < len(items)
        retried = httpx.post(
            f"{url}/v1/sync/push",
            json=batch,
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert retried.status_code == 200, retried.text
        statuses = [r["status"] for r in retried.json()["results"]]
        assert statuses.count("duplicate") == partial
        assert statuses.count("applied") == len(items) - partial
        stats = admin.get(f"/v1/events/{eid}/stats").json()
        assert stats["checkpoints"][0]["entries"] == len(items)
        assert stats["zones"][0]["occupancy"] == len(items)
        again = httpx.post(
            f"{url}/v1/sync/push",
            json=batch,
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        ).json()["results"]
        assert {r["status"] for r in again} == {"duplicate"}
    finally:
        server.kill()
        server.wait(10)
