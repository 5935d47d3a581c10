"""Webhook delivery: sustained deliveries/s to one local receiver, scan→delivered latency, and
online scan throughput with three subscribed endpoints against none, measured in one run.

`doorcheck server` (embedded dispatcher on, the default deployment) and a counting receiver each
run in their own process on 127.0.0.1, on a fresh SQLite file (and, with --postgres, a fresh
PostgreSQL database). The receiver answers 204 at once and logs the arrival time of every
message; it is a small ASGI app on uvicorn, the kind of server an integrator runs
(`--receiver threads`: Python's ThreadingHTTPServer instead, which costs ~3x the CPU per
request on the cores the server shares with it here).

1. Backlog: N attendees imported in one request with one endpoint subscribed to
   `attendee.registered`; deliveries/s = the middle 80% of arrivals over their time span.
2. Latency: one accepted scan every 50 ms; each scan's `checkin.accepted` arrival time minus the
   moment the scan request was sent.
3. Ingest: one sequential client scanning as fast as it can, in 15 rounds of two phases: no
   active endpoint, then three endpoints subscribed to `checkin.*` (delivered meanwhile by the
   server's worker). A phase times 250 scans after 50 untimed ones (the worker is busy by then)
   and waits for every delivery before the next begins. The ratio is the "three" rate over the
   "none" rate of all rounds pooled; the median and quartiles of the per-round ratios show the
   spread. Short adjacent phases cancel most of this shared host's drift, which moves the rate
   of one unchanged phase by up to 2x within a run; `--aa` runs both phases with no endpoint,
   which measures how far the method itself strays from 1.00.

Run: .venv/bin/python bench/bench_webhooks.py [--messages 9500] [--postgres] [--aa]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import (
    DOORCHECK,
    all_codes,
    drop_pg_database,
    free_port,
    make_pg_database,
    start_doorcheck_server,
)

LATENCY_SCANS = 300
LATENCY_GAP_S = 0.05
INGEST_SCANS = 250  # timed, a phase
INGEST_LEAD_IN = 50  # untimed, before each phase's timed scans
INGEST_ROUNDS = 15


def receive_asgi(port: int) -> None:
    """The receiver process on uvicorn: 204 to every POST; `GET /log?since=n` answers the
    arrivals from n on as `[unix time, webhook-id, scan_id or null]`."""
    import uvicorn

    log: list[tuple[float, str, str | None]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            arrived = time.time()
            data = json.loads(body)["data"]
            webhook_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
            log.append((arrived, webhook_id, data.get("scan_id")))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        since = int(parse_qs(scope["query_string"].decode()).get("since", ["0"])[0])
        payload = json.dumps(log[since:]).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def receive(port: int) -> None:
    """The same receiver on Python's ThreadingHTTPServer (a thread per connection)."""
    log: list[tuple[float, str, str | None]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the dispatcher's client expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            arrived = time.time()
            data = json.loads(body)["data"]
            with lock:
                log.append((arrived, self.headers["webhook-id"], data.get("scan_id")))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            since = int(parse_qs(urlsplit(self.path).query).get("since", ["0"])[0])
            with lock:
                payload = json.dumps(log[since:]).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    Server(("127.0.0.1", port), Handler).serve_forever()


class Receiver:
    """The receiver process seen from the bench."""

    def __init__(self, kind: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--receive", str(self.port), "--receiver", kind]
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.get("/log", params={"since": 0})
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def arrivals(self, since: int = 0) -> list[tuple[float, str, str | None]]:
        return [tuple(a) for a in self.client.get("/log", params={"since": since}).json()]  # type: ignore[misc]

    def wait_for(self, total: int, timeout: float = 300) -> list[tuple[float, str, str | None]]:
        """Every arrival so far, once there are at least `total`."""
        deadline = time.monotonic() + timeout
        got = self.arrivals()
        while len(got) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(got)} of {total} webhooks arrived")
            time.sleep(0.1)
            got += self.arrivals(len(got))
        return got

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(
    db_url: str, data_dir: Path, messages: int, worker: bool, receiver_kind: str, aa: bool
) -> dict[str, float]:
    env = {
        **os.environ,
        "DOORCHECK_SECRET_KEY": "bench-" + "x" * 40,
        "DOORCHECK_RATE_LIMIT_PER_MINUTE": str(10**9),
        "DOORCHECK_DATA_DIR": str(data_dir),
        "DOORCHECK_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    init = subprocess.run(
        [DOORCHECK, "init", "--org", "bench", "--db", db_url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(init.stdout)["api_key"]
    receiver = Receiver(receiver_kind)
    port = free_port()
    if worker:  # the scale-out deployment: the server only writes the outbox
        env["DOORCHECK_WEBHOOK_EMBEDDED"] = "false"
    server = start_doorcheck_server(db_url, port, env)
    dispatcher = (
        subprocess.Popen([DOORCHECK, "worker", "--db", db_url], env=env, stderr=subprocess.DEVNULL)
        if worker
        else None
    )
    c = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    try:
        # "worker": the server's children (its webhook worker); "client": this process
        roles = {
            "server": (server.pid, False),
            "worker": (server.pid, True),
            "receiver": (receiver.proc.pid, False),
            "client": (os.getpid(), False),
        }
        if dispatcher is not None:
            roles["worker"] = (dispatcher.pid, False)
        return _measure(c, receiver, messages, roles, aa)
    finally:
        c.close()
        server.terminate()
        server.wait(10)
        if dispatcher is not None:
            dispatcher.terminate()
            dispatcher.wait(10)
        receiver.stop()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU time (user + system) of `pid`, or of its children if asked, from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if (int(fields[1]) if children else int(entry.name)) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _measure(
    c: httpx.Client,
    receiver: Receiver,
    messages: int,
    roles: dict[str, tuple[int, bool]],
    aa: bool,
) -> dict[str, float]:
    eid = c.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
    c.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
    zone = c.post(f"/v1/events/{eid}/zones", json={"name": "Hall", "capacity": 10**6}).json()
    gate = c.post(f"/v1/events/{eid}/checkpoints", json={"name": "Gate", "zone_id": zone["id"]})
    scans_url = f"/v1/checkpoints/{gate.json()['id']}/scans"
    hooks = []
    for n in range(3):
        created = c.post(
            "/v1/webhooks",
            json={
                "url": f"{receiver.url}/hooks/{n}",
                "events": ["attendee.registered"],
                "active": n == 0,
            },
        )
        assert created.status_code == 201, created.text
        hooks.append(created.json()["id"])

    # 1. a backlog of `messages` to one endpoint
    rows = "first_name,last_name,email,ticket_type\n" + "".join(
        f"P{i},Bench,p{i}@example.com,general\n" for i in range(messages)
    )
    imported = c.post(
        f"/v1/events/{eid}/attendees/import", content=rows, headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 200 and imported.json()["created"] == messages, imported.text
    times = sorted(t for t, _, _ in receiver.wait_for(messages))
    lo, hi = times[len(times) // 10], times[len(times) * 9 // 10]
    sustained = (len(times) * 8 // 10) / (hi - lo)
    overall = len(times) / (times[-1] - times[0])
    seen = messages

    codes = all_codes(c, eid)
    codes.reverse()

    # 2. scan -> delivered, one scan every LATENCY_GAP_S
    checkin = {"events": ["checkin.accepted", "checkin.denied"]}
    c.patch(f"/v1/webhooks/{hooks[0]}", json=checkin)
    sent: dict[str, float] = {}
    for _ in range(20):  # warm-up, not measured
        c.post(scans_url, json={"code": codes.pop()})
    seen += 20
    for _ in range(LATENCY_SCANS):
        t0 = time.time()
        answer = c.post(scans_url, json={"code": codes.pop()}).json()
        sent[answer["scan_id"]] = t0
        time.sleep(max(0.0, LATENCY_GAP_S - (time.time() - t0)))
    seen += LATENCY_SCANS
    arrived = {s: t for t, _, s in receiver.wait_for(seen) if s in sent}
    latencies = [(arrived[s] - t0) * 1000 for s, t0 in sent.items()]

    # 3. ingest with no endpoint vs three, alternated in short phases
    spent: dict[int, float] = {0: 0.0, 3: 0.0}  # timed seconds a phase kind
    rounds: list[tuple[float, float]] = []  # (none, three) scans/s
    cpu: dict[tuple[int, str], float] = {}  # CPU seconds during the timed scans
    for _ in range(INGEST_ROUNDS):
        rates = {}
        for active in (0, 3):
            subscribed = 0 if aa else active
            for n, hook in enumerate(hooks):
                c.patch(f"/v1/webhooks/{hook}", json={**checkin, "active": n < subscribed})
            for _ in range(INGEST_LEAD_IN):
                c.post(scans_url, json={"code": codes.pop()})
            cpu_before = {role: cpu_seconds(*who) for role, who in roles.items()}
            start = time.perf_counter()
            for _ in range(INGEST_SCANS):
                r = c.post(scans_url, json={"code": codes.pop()})
                assert r.status_code == 200, r.text
            took = time.perf_counter() - start
            for role, who in roles.items():
                used = cpu_seconds(*who) - cpu_before[role]
                cpu[(active, role)] = cpu.get((active, role), 0.0) + used
            spent[active] += took
            rates[active] = INGEST_SCANS / took
            seen += (INGEST_LEAD_IN + INGEST_SCANS) * subscribed
            receiver.wait_for(seen)  # drained before the next phase starts
        rounds.append((rates[0], rates[3]))
    print("  ingest rounds (scans/s, none -> three):", flush=True)
    for none_rate, three_rate in rounds:
        print(f"    {none_rate:7.1f} -> {three_rate:7.1f}  ({three_rate / none_rate:.2f})")
    ratios = sorted(t / n for n, t in rounds)
    quartiles = statistics.quantiles(ratios, n=4)
    timed = INGEST_SCANS * INGEST_ROUNDS
    return {
        "deliveries_per_s": sustained,
        "deliveries_per_s_overall": overall,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_max_ms": max(latencies),
        "scans_per_s_none": timed / spent[0],
        "scans_per_s_three": timed / spent[3],
        "ingest_ratio": spent[0] / spent[3],
        "ingest_ratio_round_median": statistics.median(ratios),
        "ingest_ratio_round_q1": quartiles[0],
        "ingest_ratio_round_q3": quartiles[2],
    } | {
        f"cpu_ms_per_scan_{role}_{'three' if active else 'none'}": used * 1000 / timed
        for (active, role), used in sorted(cpu.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=9500)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="deliver from a `doorcheck worker` process instead of inside the server",
    )
    parser.add_argument("--receiver", choices=("uvicorn", "threads"), default="uvicorn")
    parser.add_argument(
        "--aa", action="store_true", help="no endpoint in either phase: the method's own error"
    )
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        (receive_asgi if args.receiver == "uvicorn" else receive)(args.receive)
        return
    attendees = args.messages
    needed = 20 + LATENCY_SCANS + 2 * INGEST_ROUNDS * (INGEST_LEAD_IN + INGEST_SCANS)
    assert attendees >= needed, f"--messages must be at least {needed} (one scan each)"
    with tempfile.TemporaryDirectory() as tmp:
        engines = [("SQLite", f"sqlite:///{tmp}/bench.db", None)]
        if args.postgres:
            name, url = make_pg_database()
            engines.append(("PostgreSQL", url, name))
        for label, url, pg_name in engines:
            try:
                result = run(url, Path(tmp), attendees, args.worker, args.receiver, args.aa)
            finally:
                if pg_name:
                    drop_pg_database(pg_name)
            where = "a separate worker" if args.worker else "the server's own worker process"
            print(f"webhooks, {label}, delivered from {where} to a {args.receiver} receiver:")
            for k, v in result.items():
                print(f"  {k:26} {v:,.2f}")


if __name__ == "__main__":
    main()
