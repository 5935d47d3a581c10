"""Device sync figures: a first full pull of N attendees (gzip), bytes on the wire per attendee,
a push of 10,000 offline readings in two batches, and how soon a long-polling device sees
another gate's scan.

Run: .venv/bin/python bench/bench_sync.py [--attendees 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_server
from tests.conftest import drop_pg_database, make_pg_database


def reading(
    event: str, cp: str, code: str, at: datetime, n: int, direction: str = "in"
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_id": event,
        "checkpoint_id": cp,
        "code": code,
        "direction": direction,
        "scanned_at": at.isoformat(),
        "hlc": f"{n:015d}-00000-dev",
        "device_verdict": {"status": "accepted", "reason": "ok"},
    }


def push_in_two(gate: httpx.Client, items: list[dict[str, Any]]) -> None:
    """Push `items` in two batches; every one must be applied."""
    half = len(items) // 2
    for batch in (items[:half], items[half:]):
        r = gate.post(
            "/v1/sync/push", json={"device_time": datetime.now(UTC).isoformat(), "scans": batch}
        )
        assert r.status_code == 200, r.text
        assert all(x["status"] == "applied" for x in r.json()["results"])


def run(db_url: str, data_dir: Path, attendees: int, label: str) -> None:
    with bench_server(db_url, data_dir) as (live, key):
        admin = httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=600
        )
        eid = admin.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
        zone = admin.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
        gates = [
            admin.post(
                f"/v1/events/{eid}/checkpoints", json={"name": f"Gate {i}", "zone_id": zone["id"]}
            ).json()
            for i in (1, 2)
        ]
        both = admin.post(
            f"/v1/events/{eid}/checkpoints",
            json={"name": "Gate 3", "zone_id": zone["id"], "direction": "both"},
        ).json()
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"Person{i},Bench,p{i}@example.com,general\n" for i in range(attendees)
        )
        t = time.perf_counter()
        r = admin.post(
            f"/v1/events/{eid}/attendees/import", content=rows, headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        print(
            f"[{label}] setup: imported {attendees:,} attendees in {time.perf_counter() - t:.1f} s"
        )

        def device(name: str) -> httpx.Client:
            body = admin.post("/v1/devices", json={"name": name}).json()
            token = httpx.post(
                f"{live.url}/v1/devices/enroll", json={"code": body["enrollment_code"]}
            ).json()["device_token"]
            return httpx.Client(
                base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=600
            )

        gate = device("Gate 1")
        wire = 0
        codes: list[str] = []
        cursor = None
        t = time.perf_counter()
        while True:
            params: dict[str, Any] = {"limit": 5000, **({"cursor": cursor} if cursor else {})}
            with gate.stream("GET", f"/v1/sync/events/{eid}/pull", params=params) as resp:
                resp.read()
                wire += resp.num_bytes_downloaded
                body = resp.json()
            codes += [a["qr"] for a in body["attendees"]]
            cursor = body["cursor"]
            if not body["has_more"]:
                break
        pull_s = time.perf_counter() - t
        print(
            f"[{label}] first full pull: {len(codes):,} attendees in {pull_s:.2f} s, "
            f"{wire / 1e6:.1f} MB on the wire (gzip), {wire / len(codes):.0f} bytes/attendee"
        )

        n = min(10_000, len(codes))
        start = datetime.now(UTC) - timedelta(hours=1)
        items = [
            reading(eid, gates[0]["id"], codes[i], start + timedelta(milliseconds=i), i)
            for i in range(n)
        ]
        t = time.perf_counter()
        push_in_two(gate, items)
        spread = time.perf_counter() - t
        print(f"[{label}] push: {n:,} offline readings in 2 batches in {spread:.2f} s")

        # The same number of readings over only 100 attendees, in and out in turn: each
        # attendee's history grows to 100 readings; pushing must stay linear in the batch.
        people = codes[n + 10 : n + 110]
        start = datetime.now(UTC) - timedelta(minutes=30)
        items = [
            reading(
                eid,
                both["id"],
                people[i % len(people)],
                start + timedelta(milliseconds=i),
                2 * 10**6 + i,
                "in" if (i // len(people)) % 2 == 0 else "out",
            )
            for i in range(n)
        ]
        t = time.perf_counter()
        push_in_two(gate, items)
        deep = time.perf_counter() - t
        print(
            f"[{label}] push: {n:,} readings of {len(people)} attendees (in/out) in 2 batches "
            f"in {deep:.2f} s = {deep / spread:.2f}x the time for {n:,} attendees"
        )

        watcher, other = device("Watcher"), device("Gate 2")
        head = watcher.get(f"/v1/sync/events/{eid}/pull", params={"cursor": cursor, "limit": 5000})
        cursor = head.json()["cursor"]
        while head.json()["has_more"]:
            head = watcher.get(
                f"/v1/sync/events/{eid}/pull", params={"cursor": cursor, "limit": 5000}
            )
            cursor = head.json()["cursor"]
        lags = []
        for i in range(5):
            seen: dict[str, float] = {}

            def wait(c: str = cursor, seen: dict[str, float] = seen) -> None:
                page = watcher.get(f"/v1/sync/events/{eid}/pull", params={"cursor": c, "wait": 10})
                seen["at"] = time.perf_counter()
                seen["cursor"] = float(page.json()["cursor"])

            thread = threading.Thread(target=wait)
            thread.start()
            time.sleep(0.3)
            pushed = time.perf_counter()
            other.post(
                "/v1/sync/push",
                json={
                    "device_time": datetime.now(UTC).isoformat(),
                    "scans": [
                        reading(
                            eid,
                            gates[1]["id"],
                            codes[n + i] if n + i < len(codes) else codes[i],
                            datetime.now(UTC),
                            10**6 + i,
                        )
                    ],
                },
            )
            thread.join(15)
            lags.append(seen["at"] - pushed)
            cursor = str(int(seen["cursor"]))
        print(
            f"[{label}] long-poll: another gate's scan seen after "
            f"{', '.join(f'{x * 1000:.0f}' for x in lags)} ms (push request included)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", Path(tmp), args.attendees, "SQLite")
        if args.postgres:
            name, url = make_pg_database()
            try:
                run(url, Path(tmp), args.attendees, "PostgreSQL")
            finally:
                drop_pg_database(name)


if __name__ == "__main__":
    main()
