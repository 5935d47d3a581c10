"""Scanner core figures: a gate's first full pull of N attendees (over HTTP, and the local apply
alone), the verdict latency from the cache with N attendees cached (decode excluded, the
reading committed to disk before the verdict returns), search-as-you-type latency, and the
start of a gate with N cached (open to first verdict; with the key in a keyring and under a door
PIN).

The same file runs against a version from before the gate's data was sealed (issue 21), so the
two can be measured back to back: it notices which one it runs on and says so.

Run: .venv/bin/python bench/bench_gate.py [--attendees 100000] [--scans 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_server
from scanner_app.gate import Gate
from scanner_app.store import Store
from scanner_app.store.cache import apply_page, finish_snapshot

try:  # sealed gate data (issue 21)
    from keyring.backend import KeyringBackend

    from scanner_app.store.cipher import Cipher
    from scanner_app.store.people import attendee_by_id

    SEALED = True
except ImportError:
    SEALED = False

PIN = "482916"


if SEALED:

    class MemoryRing(KeyringBackend):
        """The platform's keyring, as far as a benchmark needs one."""

        priority = 10  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.keys: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.keys.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.keys[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.keys.pop((service, username), None)

    RING = MemoryRing()


def open_gate(folder: Path, **kwargs: Any) -> Gate:
    return Gate(folder, **({"keyring": RING} | kwargs)) if SEALED else Gate(folder)


def new_store(path: Path) -> Any:
    return Store(path, Cipher(os.urandom(32))) if SEALED else Store(path)  # type: ignore[call-arg]


def cached_people(gate: Gate) -> list[Any]:
    ids = [r["id"] for r in gate.store.query("SELECT id FROM attendees")]
    if not SEALED:
        return list(gate.store.query("SELECT id, qr, code FROM attendees"))
    return [attendee_by_id(gate.store, i) for i in ids]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1e3:.2f} ms, p95 {pct(values, 0.95) * 1e3:.2f} ms, "
        f"p99 {pct(values, 0.99) * 1e3:.2f} ms, max {max(values) * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attendees", type=int, default=100_000)
    parser.add_argument("--scans", type=int, default=5_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dc-bench-gate-"))
    print(f"gate data: {'sealed (AES-GCM fields, blind indexes)' if SEALED else 'plain'}")
    with bench_server(f"sqlite:///{work / 'server.db'}", work) as (live, key):
        admin = httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=600
        )
        eid = admin.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
        admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
        admin.post(
            f"/v1/events/{eid}/ticket-types", json={"name": "VIP", "slug": "vip", "is_vip": True}
        )
        zone = admin.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
        gate_cp = admin.post(
            f"/v1/events/{eid}/checkpoints",
            json={"name": "Gate 1", "zone_id": zone["id"], "direction": "both"},
        ).json()
        rows = "first_name,last_name,email,ticket_type,code\n" + "".join(
            f"Person{i},Bench{i % 977},p{i}@example.com,{'vip' if i % 10 == 0 else 'general'},"
            f"{f'C-{i}' if i % 4 == 0 else ''}\n"
            for i in range(args.attendees)
        )
        t = time.perf_counter()
        r = admin.post(
            f"/v1/events/{eid}/attendees/import", content=rows, headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        print(f"setup: imported {args.attendees:,} attendees in {time.perf_counter() - t:.1f} s")

        enrolment = admin.post("/v1/devices", json={"name": "Bench gate"}).json()
        gate = open_gate(work / "gate")
        gate.pair(live.url, enrolment["enrollment_code"], "Bench gate")
        gate.configure(eid, gate_cp["id"], "in", "bench")
        t = time.perf_counter()
        assert gate.sync_now(timeout=600)
        full = time.perf_counter() - t
        cached = gate.status().attendees_cached
        print(
            f"first full pull over HTTP (gzip) into the cache: {cached:,} attendees in {full:.2f} s"
        )

        # The local apply alone: the same pages, already downloaded, into a fresh store.
        client = gate._get_client()
        assert client is not None
        pages: list[Any] = []
        cursor = None
        while True:
            page = client.pull(eid, cursor, limit=5000)
            pages.append(page)
            cursor = page.cursor
            if not page.has_more:
                break
        applies = []
        for run in range(3):
            store = new_store(work / f"apply-{run}" / "scanner.db")
            t = time.perf_counter()
            for page in pages:
                apply_page(store, eid, page, gen=1)
            finish_snapshot(store, eid, 1)
            applies.append(time.perf_counter() - t)
            store.close()
        print(
            f"apply {cached:,} attendees ({len(pages)} pages) into an empty cache: "
            f"{', '.join(f'{a:.2f}' for a in applies)} s (3 runs)"
        )

        # Verdicts from the cache: a mix of first entries (signed DC1: Ed25519 verify), custom
        # codes, repeats at the same gate (already inside) and unknown codes.
        people = cached_people(gate)
        rng = random.Random(1)
        picks = rng.sample(people, min(args.scans, len(people)))
        mix: list[tuple[str, str]] = []
        for i, person in enumerate(picks):
            if i % 10 == 9:
                mix.append(("unknown", f"NOPE-{i}"))
            elif person["code"]:
                mix.append(("custom", person["code"]))
            else:
                mix.append(("signed", person["qr"]))
        gate.stop()  # measure the gate alone (no sync threads competing for the store)
        half = len(mix) // 2
        runs = [("FULL", mix[:half]), ("NORMAL", mix[half:]), ("FULL", mix[:half])]
        for label, (mode, part) in zip(("full", "normal", "full again"), runs, strict=True):
            if label == "full again":
                part = [("repeat", code) for kind, code in part if kind != "unknown"]
            gate.store.conn.execute(f"PRAGMA synchronous={mode}")
            kinds: dict[str, list[float]] = {}
            profile = None
            if os.environ.get("BENCH_PROFILE"):
                import cProfile

                profile = cProfile.Profile()
                profile.enable()
            cpu0 = time.process_time()
            wall0 = time.perf_counter()
            for kind, code in part:
                t = time.perf_counter()
                gate.submit(code)
                kinds.setdefault(kind, []).append(time.perf_counter() - t)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            if profile is not None:
                import pstats

                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            every = [v for values in kinds.values() for v in values]
            print(
                f"verdicts from a cache of {cached:,}, synchronous={mode} ({label}, "
                f"{len(every):,} readings): {ms(every)}; {len(every) / wall:,.0f}/s, "
                f"CPU {cpu / len(every) * 1e3:.2f} ms each"
            )
            for kind, values in sorted(kinds.items()):
                print(f"  {kind:<8} n={len(values):>5}: {ms(values)}")

        queries = ["pers", "person12", "bench97", "p4242@", "C-400", "person1 bench1", "zz"]
        times = []
        for _ in range(20):
            for q in queries:
                t = time.perf_counter()
                gate.search(q)
                times.append(time.perf_counter() - t)
        print(f"search as you type over {cached:,} (30 results): {ms(times)}")
        for q in queries:
            t = time.perf_counter()
            found = gate.search(q)
            print(f"  {q!r:<18} {len(found):>3} found in {(time.perf_counter() - t) * 1e3:.2f} ms")
        gate.close()
        start_to_ready(work / "gate", mix[0][1], cached)


def start_to_ready(folder: Path, code: str, cached: int) -> None:
    """Open the gate with its cache, read its status and decide one code (the app's start)."""

    def measure(label: str, **kwargs: Any) -> None:
        times, searchable = [], []
        for _ in range(3):
            t = time.perf_counter()
            gate = open_gate(folder, **kwargs)
            gate.status()
            gate.submit(code)
            times.append(time.perf_counter() - t)
            gate.search("person1")  # waits for the in-memory name index, when there is one
            searchable.append(time.perf_counter() - t)
            gate.close()
        print(
            f"start to ready with {cached:,} cached ({label}): "
            f"{', '.join(f'{v:.2f}' for v in times)} s (3 runs); "
            f"search ready at {', '.join(f'{v:.2f}' for v in searchable)} s"
        )

    measure("key in the keyring" if SEALED else "plain")
    if SEALED:
        open_gate(folder, pin=PIN).close()  # the key moves under a door PIN
        measure("key under a door PIN", keyring=None, pin=PIN)


if __name__ == "__main__":
    main()
