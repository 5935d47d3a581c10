"""Online scan latency and throughput from one sequential client over loopback HTTP.

Runs the real app under uvicorn on 127.0.0.1 with a fresh SQLite file (and, with --postgres, a
fresh PostgreSQL database), loads N attendees, then scans each once at an entry gate.

Run: .venv/bin/python bench/bench_server.py [--attendees 2000] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync_server.app import create_app  # noqa: E402
from sync_server.db import session_scope  # noqa: E402
from sync_server.migrate import upgrade  # noqa: E402
from sync_server.services.keys import create_organization  # noqa: E402
from sync_server.settings import Settings  # noqa: E402
from tests.conftest import drop_pg_database, make_pg_database, serve  # noqa: E402


def run(db_url: str, data_dir: Path, attendees: int) -> dict[str, float]:
    settings = Settings(db_url=db_url, data_dir=data_dir, secret_key="bench-" + "x" * 40,
                        rate_limit_per_minute=10**9)
    app = create_app(settings)
    upgrade(app.state.engine)
    live = serve(app)
    try:
        with session_scope(app.state.engine) as session:
            _, key = create_organization(session, name="bench", secret=app.state.secret)
        c = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        eid = c.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        c.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
        zone = c.post(f"/v1/events/{eid}/zones", json={"name": "Hall", "capacity": 10**6}).json()
        gate = c.post(f"/v1/events/{eid}/checkpoints", json={"name": "Gate", "zone_id": zone["id"]}).json()
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"P{i},Bench,p{i}@example.com,general\n" for i in range(attendees))
        imported = c.post(f"/v1/events/{eid}/attendees/import", content=rows,
                          headers={"Content-Type": "text/csv"})
        codes: list[str] = []
        if imported.status_code == 200:
            cursor = None
            while True:
                page = c.get(f"/v1/events/{eid}/attendees",
                             params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
                codes += [a["qr"] for a in page["data"]]
                if not page["has_more"]:
                    break
                cursor = page["next_cursor"]
        else:  # before the import endpoint existed: one registration at a time
            for i in range(attendees):
                codes.append(c.post(f"/v1/events/{eid}/registrations", json={
                    "first_name": f"P{i}", "last_name": "Bench", "ticket_type": "general"}).json()["qr"])
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
        live.stop()
        app.state.engine.dispose()


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
            print("online scan, PostgreSQL: " + "  ".join(f"{k}={v:,.1f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
