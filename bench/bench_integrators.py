"""Issue 20's figures: what an `Idempotency-Key` adds to an online scan (p50, with and without
the key, interleaved back to back in one run), what the request-id and metrics layer adds to
it (two servers, one without the layer, interleaved), and an export of 100,000 attendees
streamed as CSV (time to the last byte, and the server process's peak memory growth while it
streams).

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
from contextlib import ExitStack
from pathlib import Path

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_server
from sync_server.api.observe import Observe


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


def _scan(client: httpx.Client, gate: str, code: str, n: int, headers: dict[str, str]) -> float:
    body = {"code": code, "direction": "in" if n % 2 else "out"}
    start = time.perf_counter()
    answer = client.post(f"/v1/checkpoints/{gate}/scans", json=body, headers=headers)
    took = (time.perf_counter() - start) * 1000
    assert answer.status_code == 200, answer.text
    return took


def _without_observe(app: FastAPI) -> FastAPI:
    """The app without its request-id and metrics layer (the stack is built on first use)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not Observe]
    return app


def metrics_overhead(scans: int) -> None:
    """Online scan p50 on two servers, with and without the `Observe` layer, interleaved."""
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        with ExitStack() as stack:
            for name, wrap in (("with", None), ("without", _without_observe)):
                url = f"sqlite:///{folder}/{name}.db"
                live, key = stack.enter_context(bench_server(url, Path(folder) / name, wrap))
                client = httpx.Client(
                    base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
                )
                _, gate, codes = _setup(client, 200)
                assert ("x-request-id" in client.get("/healthz").headers) == (name == "with")
                runs.append((client, gate, codes, []))
            for n in range(scans):
                for client, gate, codes, times in runs:
                    times.append(_scan(client, gate, codes[n % len(codes)], n, {}))
        (*_, with_layer), (*_, without) = runs
        p50_with, p50_without = statistics.median(with_layer), statistics.median(without)
        print(
            f"online scan p50: {p50_without:.2f} ms without the request-id/metrics layer, "
            f"{p50_with:.2f} ms with it: {100 * (p50_with / p50_without - 1):+.1f}% "
            f"({scans} each)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--scans", type=int, default=400)
    args = parser.parse_args()
    metrics_overhead(args.scans)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        with bench_server(url, Path(folder)) as (live, key):
            client = httpx.Client(
                base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            event, gate, codes = _setup(client, args.attendees)
            plain: list[float] = []
            keyed: list[float] = []
            for n in range(args.scans):  # interleaved: the same conditions for both
                code = codes[n % len(codes)]
                plain.append(_scan(client, gate, code, n, {}))
                keyed.append(_scan(client, gate, code, n, {"Idempotency-Key": str(uuid.uuid4())}))
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
