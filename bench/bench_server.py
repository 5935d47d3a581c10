"""Online scan latency and throughput from one sequential client over loopback HTTP.

Runs `doorcheck server` (uvicorn) on 127.0.0.1 in its own process with a fresh SQLite file
(and, with --postgres, a
fresh PostgreSQL database), loads N attendees, then scans each once at an entry gate.

Run: .venv/bin/python bench/bench_server.py [--attendees 2000] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import (
    DOORCHECK,
    drop_pg_database,
    free_port,
    make_pg_database,
    start_doorcheck_server,
)


def run(db_url: str, data_dir: Path, attendees: int) -> dict[str, float]:
    """The server runs as `doorcheck server` in its own process (the client must not share its
    interpreter and GIL), on a fresh database."""
    env = {
        **os.environ,
        "DOORCHECK_SECRET_KEY": "bench-" + "x" * 40,
        "DOORCHECK_RATE_LIMIT_PER_MINUTE": str(10**9),
        "DOORCHECK_DATA_DIR": str(data_dir),
    }
    init = subprocess.run(
        [DOORCHECK, "init", "--org", "bench", "--db", db_url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(init.stdout)["api_key"]
    port = free_port()
    server = start_doorcheck_server(db_url, port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        eid = c.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        c.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
        zone = c.post(f"/v1/events/{eid}/zones", json={"name": "Hall", "capacity": 10**6}).json()
        gate = c.post(
            f"/v1/events/{eid}/checkpoints", json={"name": "Gate", "zone_id": zone["id"]}
        ).json()
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"P{i},Bench,p{i}@example.com,general\n" for i in range(attendees)
        )
        imported = c.post(
            f"/v1/events/{eid}/attendees/import", content=rows, headers={"Content-Type": "text/csv"}
        )
        codes: list[str] = []
        if imported.status_code == 200:
            cursor = None
            while True:
                page = c.get(
                    f"/v1/events/{eid}/attendees",
                    params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                ).json()
                codes += [a["qr"] for a in page["data"]]
                if not page["has_more"]:
                    break
                cursor = page["next_cursor"]
        else:  # before the import endpoint existed: one registration at a time
            for i in range(attendees):
                codes.append(
                    c.post(
                        f"/v1/events/{eid}/registrations",
                        json={
                            "first_name": f"P{i}",
                            "last_name": "Bench",
                            "ticket_type": "general",
                        },
                    ).json()["qr"]
                )
        url = f"/v1/checkpoints/{gate['id']}/scans"
        for code in codes[:50]:  # warm-up: connections, caches, query plans
            c.post(url, json={"code": code, "direction": "in"})
        latencies = []
        start = time.perf_counter()
        for code in codes[50:]:
            t0 = time.perf_counter()
            r = c.post(url, json={"code": code})
            latencies.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200 and r.json()["verdict"]["status"] == "accepted", r.text
        wall = time.perf_counter() - start
        latencies.sort()
        return {
            "scans": len(latencies),
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(len(latencies) * 0.95)],
            "p99_ms": latencies[int(len(latencies) * 0.99)],
            "scans_per_s": len(latencies) / wall,
        }
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(f"sqlite:///{tmp}/bench.db", Path(tmp), args.attendees)
        print("online scan, SQLite:     " + "  ".join(f"{k}={v:,.1f}" for k, v in result.items()))
        if args.postgres:
            name, url = make_pg_database()
            try:
                result = run(url, Path(tmp), args.attendees)
            finally:
                drop_pg_database(name)
            print(
                "online scan, PostgreSQL: " + "  ".join(f"{k}={v:,.1f}" for k, v in result.items())
            )


if __name__ == "__main__":
    main()
