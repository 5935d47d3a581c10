"""Attendee import throughput over loopback HTTP: a generated CSV of N rows (default 100,000)
into a fresh event, then the same file again (every row unchanged), then with 10% of rows changed.
Meanwhile a door keeps scanning one ticket online; its slowest scan shows how long the import
held the write lock.

Runs the real app under uvicorn on 127.0.0.1 with a fresh SQLite file (and, with --postgres, a
fresh PostgreSQL database). Goal: 100,000 rows in at most 15 s on SQLite.

Run: .venv/bin/python bench/bench_import.py [--rows 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_server
from tests.conftest import drop_pg_database, make_pg_database

TYPES = ("general", "general", "general", "vip", "staff")
FIRST = ("Ana", "Bo", "Chen", "Dara", "Émile", "Farah", "Gus", "Hana", "Ivo", "Jun")
LAST = ("Ruiz", "Lee", "Okafor", "Nowak", "Silva", "Sato", "Müller", "Haddad", "Kim", "Berg")


def make_csv(rows: int, changed_every: int = 0) -> bytes:
    """`rows` attendees; with `changed_every`, every n-th row has a new company."""
    lines = ["first_name,last_name,email,phone,company,ticket_type,tags,custom.seat"]
    for i in range(rows):
        company = "Changed Co" if changed_every and i % changed_every == 0 else f"Company {i % 97}"
        tags = "press;speaker" if i % 10 == 0 else ""
        lines.append(
            f"{FIRST[i % 10]},{LAST[i // 10 % 10]} {i},person{i}@example.com,"
            f"+34 600 {i:06d},{company},{TYPES[i % 5]},{tags},R{i % 40}-{i % 25}"
        )
    return ("\n".join(lines) + "\n").encode()


class Door(threading.Thread):
    """Scans one ticket over and over at a gate, keeping when each scan started and ended."""

    def __init__(self, url: str, key: str, gate: str, code: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        self.gate, self.code = gate, code
        self.scans: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            start = time.perf_counter()
            response = self.client.post(
                f"/v1/checkpoints/{self.gate}/scans", json={"code": self.code}
            )
            assert response.status_code == 200, response.text
            self.scans.append((start, time.perf_counter()))
            time.sleep(0.05)

    def during(self, start: float, end: float) -> tuple[int, float]:
        """Scans that overlapped [start, end], and the slowest of them (waits for the last)."""
        deadline = time.perf_counter() + 120
        while (not self.scans or self.scans[-1][1] < end) and time.perf_counter() < deadline:
            time.sleep(0.01)
        spans = [b - a for a, b in self.scans if b >= start and a <= end]
        return len(spans), max(spans, default=0.0)


def timed_import(
    client: httpx.Client, eid: str, body: bytes, door: Door | None
) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    response = client.post(
        f"/v1/events/{eid}/attendees/import", content=body, headers={"Content-Type": "text/csv"}
    )
    end = time.perf_counter()
    assert response.status_code == 200, response.text[:500]
    result = response.json()
    assert not result["errors"], result["errors"][:5]
    counts: dict[str, Any] = {k: result[k] for k in ("created", "updated", "unchanged")}
    if door is not None:
        scans, slowest = door.during(start, end)
        counts |= {"door_scans": scans, "slowest_scan_s": round(slowest, 2)}
    return end - start, counts


def run(
    db_url: str, data_dir: Path, rows: int, door: bool = True
) -> list[tuple[str, float, dict[str, Any]]]:
    with bench_server(db_url, data_dir) as (live, key):
        c = httpx.Client(
            base_url=live.url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(30, read=600),
        )
        eid = c.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        for slug in sorted(set(TYPES)):
            c.post(f"/v1/events/{eid}/ticket-types", json={"name": slug.title(), "slug": slug})
        gate = c.post(f"/v1/events/{eid}/checkpoints", json={"name": "Gate"}).json()["id"]
        staff = c.post(
            f"/v1/events/{eid}/registrations",
            json={"first_name": "Door", "last_name": "Test", "ticket_type": "staff"},
        ).json()
        scanner = Door(live.url, key, gate, staff["qr"])
        if door:
            scanner.start()
        fresh, changed = make_csv(rows), make_csv(rows, changed_every=10)
        runs = []
        try:
            for label, body in (
                ("first import", fresh),
                ("re-import", fresh),
                ("10% changed", changed),
            ):
                seconds, counts = timed_import(c, eid, body, scanner if door else None)
                runs.append((label, seconds, counts))
        finally:
            scanner.done.set()
            if door:
                scanner.join(timeout=150)
        return runs


def report(engine: str, rows: int, runs: list[tuple[str, float, dict[str, Any]]]) -> None:
    for label, seconds, counts in runs:
        tally = " ".join(f"{k}={v}" for k, v in counts.items())
        print(
            f"import {rows:,} rows, {engine:<10} {label:<13} {seconds:6.2f} s "
            f"{rows / seconds:9,.0f} rows/s  ({tally})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--no-door",
        action="store_true",
        help="no concurrent scans (they share this process's GIL with the import)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = run(f"sqlite:///{tmp}/bench.db", Path(tmp), args.rows, door=not args.no_door)
        report("SQLite", args.rows, runs)
        if args.postgres:
            name, url = make_pg_database()
            try:
                report(
                    "PostgreSQL", args.rows, run(url, Path(tmp), args.rows, door=not args.no_door)
                )
            finally:
                drop_pg_database(name)


if __name__ == "__main__":
    main()
