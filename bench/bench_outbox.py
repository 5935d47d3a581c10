"""The webhook outbox's cost inside a scan's transaction: the CPU time (the server thread's own
clock, so the client and other threads do not count) spent queueing `checkin.*` messages, with
no endpoint and with three subscribed, alternated in one run.

The server runs in this process on a real uvicorn over loopback (bench/common.py) with no
dispatcher, so nothing is delivered: only the write is measured. The client is httpx in the same
process; `time.thread_time` around the scan service's `_announce` excludes it.

Run: .venv/bin/python bench/bench_outbox.py [--scans 500] [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DOORCHECK_WEBHOOK_EMBEDDED"] = "false"  # write the outbox, deliver nothing
os.environ["DOORCHECK_WEBHOOK_ALLOW_PRIVATE"] = "true"

from bench.common import bench_server
from sync_server.services import scanning
from sync_server.webhooks import outbox
from tests.conftest import all_codes, drop_pg_database, make_pg_database

SPENT: dict[str, list[float]] = {}


def _clocked(module: Any, name: str) -> None:
    """Wrap `module.name` to add its thread CPU time per call to SPENT[name]."""
    original = getattr(module, name)

    @functools.wraps(original)
    def clocked(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT.setdefault(name, []).append(time.thread_time() - start)

    setattr(module, name, clocked)


def run(db_url: str, data_dir: Path, scans: int, rounds: int) -> dict[str, float]:
    _clocked(scanning, "_announce")
    _clocked(outbox, "emit_many")
    _clocked(outbox, "subscribers")
    per: dict[tuple[int, str], list[float]] = {}
    with bench_server(db_url, data_dir) as (live, key):
        c = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        eid = c.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        c.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
        zone = c.post(f"/v1/events/{eid}/zones", json={"name": "Hall", "capacity": 10**6}).json()
        gate = c.post(f"/v1/events/{eid}/checkpoints", json={"name": "Gate", "zone_id": zone["id"]})
        url = f"/v1/checkpoints/{gate.json()['id']}/scans"
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"P{i},Bench,p{i}@example.com,general\n" for i in range(scans * rounds * 2 + 20)
        )
        c.post(
            f"/v1/events/{eid}/attendees/import",
            content=rows,
            headers={"Content-Type": "text/csv"},
        ).raise_for_status()
        codes = all_codes(c, eid)
        hooks = [
            c.post(
                "/v1/webhooks",
                json={
                    "url": f"http://127.0.0.1:9/hook/{n}",
                    "events": ["checkin.accepted", "checkin.denied"],
                    "active": False,
                },
            ).json()["id"]
            for n in range(3)
        ]
        for _ in range(20):  # warm-up: connections, statement caches
            c.post(url, json={"code": codes.pop()})
        for _ in range(rounds):
            for active in (0, 3):
                for n, hook in enumerate(hooks):
                    c.patch(f"/v1/webhooks/{hook}", json={"active": n < active})
                SPENT.clear()
                for _ in range(scans):
                    assert c.post(url, json={"code": codes.pop()}).status_code == 200
                for name, values in SPENT.items():
                    per.setdefault((active, name), []).append(statistics.mean(values) * 1e6)
        c.close()
    return {
        f"{name}_us_{'three' if active else 'none'}": statistics.median(values)
        for (active, name), values in sorted(per.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            name, url = make_pg_database()
            label = "PostgreSQL"
        else:
            name, url, label = None, f"sqlite:///{tmp}/bench.db", "SQLite"
        try:
            result = run(url, Path(tmp), args.scans, args.rounds)
        finally:
            if name:
                drop_pg_database(name)
    print(f"outbox write per scan (thread CPU, median of {args.rounds} rounds), {label}:")
    for k, v in result.items():
        print(f"  {k:28} {v:8.0f}")


if __name__ == "__main__":
    main()
