"""Issue 20's figures: what an `Idempotency-Key` adds to an online scan (p50, with and without
the key, interleaved back to back in one run) and an export of 100,000 attendees streamed as
CSV (time to the last byte, and the server process's peak memory growth while it streams).

    .venv/bin/python bench/bench_integrators.py [--attendees 100000] [--scans 400]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_server


def _setup(client: httpx.Client, attendees: int) -> tuple[str, str, list[str]]:
    event = client.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
    client.post(f"/v1/events/{event}/ticket-types", json={"name": "G", "slug": "general"})
    zone = client.post(f"/v1/events/{event}/zones", json={"name": "Hall"}).json()["id"]
    gate = client.post(
        f"/v1/events/{event}/checkpoints",
        json={"name": "A", "zone_id": zone, "direction": "both", "anti_passback": False},
    ).json()["id"]
    lines = ["first_name,last_name,email,ticket_type,custom.seat"]
    lines += [f"P{n},Q{n},p{n}@example.com,general,S{n}" for n in range(attendees)]
    done = client.post(
        f"/v1/events/{event}/attendees/import",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "text/csv"},
        timeout=600,
    )
    assert done.status_code == 200, done.text
    codes = [a["qr"] for a in client.get(f"/v1/events/{event}/attendees?limit=100").json()["data"]]
    return event, gate, codes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--scans", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        with bench_server(url, Path(folder)) as (live, key):
            client = httpx.Client(
                base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            event, gate, codes = _setup(client, args.attendees)
            plain, keyed = [], []
            for n in range(args.scans):  # interleaved: the same conditions for both
                for times, headers in (
                    (plain, {}),
                    (keyed, {"Idempotency-Key": str(uuid.uuid4())}),
                ):
                    body = {"code": codes[n % len(codes)], "direction": "in" if n % 2 else "out"}
                    start = time.perf_counter()
                    answer = client.post(
                        f"/v1/checkpoints/{gate}/scans", json=body, headers=headers
                    )
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, answer.text
            p50_plain, p50_keyed = statistics.median(plain), statistics.median(keyed)
            print(
                f"online scan p50: {p50_plain:.2f} ms without a key, {p50_keyed:.2f} ms with "
                f"an Idempotency-Key: +{p50_keyed - p50_plain:.2f} ms ({args.scans} each)"
            )
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start, size = time.perf_counter(), 0
            with client.stream("GET", f"/v1/events/{event}/attendees/export") as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            took = time.perf_counter() - start
            grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            print(
                f"export of {args.attendees:,} attendees (CSV): {took:.2f} s, "
                f"{size / 1e6:.1f} MB, peak RSS growth {grew / 1024:.1f} MiB "
                "(server and client in this process)"
            )


if __name__ == "__main__":
    main()
