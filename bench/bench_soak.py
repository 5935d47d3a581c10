"""A bad day at the venue, on PostgreSQL: 2 `doorcheck server` + 2 `doorcheck worker` processes,
20 devices pushing readings and long-polling for 60 s through both servers, a webhook receiver
that fails half of what it gets, and one server and one worker SIGKILLed and restarted mid-run.

    .venv/bin/python bench/bench_soak.py [--seconds 60] [--devices 20]

Prints readings pushed / acknowledged / stored (lost, doubled), 5xx answers, deliveries
expected / received / duplicated, and p95 latencies. Not run in CI (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import (
    DOORCHECK,
    drop_pg_database,
    free_port,
    init_org,
    make_pg_database,
    start_doorcheck_server,
    stop_process,
)


class Receiver:
    """Answers 503 to half its requests (at random); remembers every webhook id it acknowledged
    and how long after the server received the reading it arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.acked: Counter[str] = Counter()
        self.lag_ms: list[float] = []
        self.rng = random.Random(7)
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                with state.lock:
                    state.requests += 1
                    fail = state.rng.random() < 0.5
                    if not fail:
                        state.acked[self.headers["webhook-id"]] += 1
                        received = body["data"].get("received_at")  # when the server had it
                        if received:
                            at = datetime.fromisoformat(received.replace("Z", "+00:00"))
                            state.lag_ms.append((time.time() - at.timestamp()) * 1000)
                self.send_response(503 if fail else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class Fleet:
    """The devices: each pushes small batches through the servers in turn and retries a batch
    until it is answered, as a gate does with its outbox."""

    def __init__(self, urls: list[str], tokens: list[str], event: dict[str, Any]) -> None:
        self.urls, self.tokens, self.event = urls, tokens, event
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent: set[str] = set()
        self.acked: set[str] = set()
        self.status: Counter[int] = Counter()
        self.errors = 0
        self.push_ms: list[float] = []
        self.pulls = 0

    def _post(self, n: int, body: dict[str, Any], token: str) -> httpx.Response | None:
        url = self.urls[n % len(self.urls)]
        started = time.perf_counter()
        try:
            response = httpx.post(
                f"{url}/v1/sync/push",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.TransportError:
            with self.lock:
                self.errors += 1
            return None
        with self.lock:
            self.status[response.status_code] += 1
            self.push_ms.append((time.perf_counter() - started) * 1000)
        return response

    def device(self, index: int) -> None:
        token, rng = self.tokens[index], random.Random(index)
        codes, cp = self.event["codes"], self.event["checkpoint"]
        n = index
        while not self.stop.is_set():
            batch = [
                {
                    "id": str(uuid.uuid4()),
                    "event_id": self.event["id"],
                    "checkpoint_id": cp,
                    "code": rng.choice(codes),
                    "direction": rng.choice(["in", "in", "out"]),
                    "scanned_at": datetime.now(UTC).isoformat(),
                    "hlc": f"{time.time_ns() // 1_000_000:015d}-{i:05d}-{index}",
                    "device_verdict": {"status": "accepted", "reason": "ok"},
                }
                for i in range(rng.randint(1, 20))
            ]
            with self.lock:
                self.sent.update(item["id"] for item in batch)
            while True:  # the outbox keeps the batch until it is answered
                n += 1
                body = {"device_time": datetime.now(UTC).isoformat(), "scans": batch}
                response = self._post(n, body, token)
                if response is not None and response.status_code == 200:
                    results = response.json()["results"]
                    done = {r["id"] for r in results if r["status"] in ("applied", "duplicate")}
                    with self.lock:
                        self.acked |= done
                    break
                time.sleep(0.5)
            time.sleep(rng.uniform(0.05, 0.3))

    def puller(self, index: int) -> None:
        token, n, cursor = self.tokens[index], index, None
        while not self.stop.is_set():
            n += 1
            url = self.urls[n % len(self.urls)]
            try:
                params: dict[str, Any] = {"limit": 5000, "wait": 5}
                if cursor:
                    params["cursor"] = cursor
                page = httpx.get(
                    f"{url}/v1/sync/events/{self.event['id']}/pull",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                with self.lock:
                    self.status[page.status_code] += 1
                    self.pulls += 1
                if page.status_code == 200:
                    cursor = page.json()["cursor"]
                else:
                    time.sleep(0.5)
            except httpx.TransportError:
                with self.lock:
                    self.errors += 1
                time.sleep(0.5)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else float("nan")


def setup(url: str, key: str, receiver: Receiver, devices: int) -> tuple[dict[str, Any], list[str]]:
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    event = admin.post("/v1/events", json={"name": "Soak", "slug": "soak"}).json()
    eid = event["id"]
    admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
    zone = admin.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
    cp = admin.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Door", "zone_id": zone["id"], "direction": "both"},
    ).json()
    rows = "first_name,last_name,ticket_type\n" + "".join(
        f"Soak{i},Person,general\n" for i in range(2000)
    )
    admin.post(f"/v1/events/{eid}/attendees/import", content=rows,
               headers={"Content-Type": "text/csv"})  # fmt: skip
    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = admin.get(f"/v1/events/{eid}/attendees", params=params).json()
        codes += [a["qr"] for a in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    hook = admin.post("/v1/webhooks", json={"url": receiver.url, "events": ["checkin.accepted"]})
    assert hook.status_code == 201, hook.text
    tokens = []
    for i in range(devices):
        code = admin.post("/v1/devices", json={"name": f"Gate {i}"}).json()["enrollment_code"]
        enrolled = httpx.post(f"{url}/v1/devices/enroll", json={"code": code, "name": f"G{i}"})
        tokens.append(enrolled.json()["device_token"])
    return {"id": eid, "codes": codes, "checkpoint": cp["id"]}, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    name, db_url = make_pg_database()
    work = Path(tempfile.mkdtemp(prefix="dc-soak-"))
    env = {
        **os.environ,
        "DOORCHECK_SECRET_KEY": "soak-" + "s" * 40,
        "DOORCHECK_WEBHOOK_ALLOW_PRIVATE": "true",
        "DOORCHECK_WEBHOOK_EMBEDDED": "false",
        "DOORCHECK_WEBHOOK_RETRY_SCHEDULE": ",".join(["1", "1"] + ["2"] * 28),
        "DOORCHECK_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    receiver = Receiver()
    try:
        key = init_org(db_url, env, work)
        ports = [free_port(), free_port()]
        procs["server-a"] = start_doorcheck_server(db_url, ports[0], env, work)
        procs["server-b"] = start_doorcheck_server(db_url, ports[1], env, work)

        def worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [DOORCHECK, "worker", "--db", db_url],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        procs["worker-1"], procs["worker-2"] = worker(), worker()
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        event, tokens = setup(urls[0], key, receiver, args.devices)
        fleet = Fleet(urls, tokens, event)
        threads = [
            threading.Thread(target=target, args=(i,), daemon=True)
            for i in range(args.devices)
            for target in (fleet.device, fleet.puller)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        kills = []
        for at, victim in ((args.seconds / 3, "server-a"), (args.seconds / 2, "worker-1")):
            time.sleep(max(0.0, started + at - time.monotonic()))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            kills.append(f"{victim} killed at {time.monotonic() - started:.0f} s")
            time.sleep(2)
            if victim.startswith("server"):
                procs[victim] = start_doorcheck_server(db_url, ports[0], env, work)
            else:
                procs[victim] = worker()
        time.sleep(max(0.0, started + args.seconds - time.monotonic()))
        fleet.stop.set()
        for thread in threads:
            thread.join(60)
        engine = create_engine(db_url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*), count(DISTINCT id) FROM scans")).one()
            accepted = conn.execute(
                text("SELECT count(*) FROM scans WHERE status = 'accepted'")
            ).scalar_one()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(receiver.acked) < accepted:
            time.sleep(1)
        with engine.connect() as conn:
            messages = conn.execute(
                text("SELECT count(*) FROM webhook_messages WHERE type = 'checkin.accepted'")
            ).scalar_one()
        engine.dispose()
        lost = len(fleet.acked) - stored[1]
        fivexx = sum(n for code, n in fleet.status.items() if code >= 500)
        report = {
            "seconds": args.seconds,
            "devices": args.devices,
            "kills": kills,
            "readings_sent": len(fleet.sent),
            "readings_acknowledged": len(fleet.acked),
            "readings_stored": stored[0],
            "readings_lost": lost,
            "readings_doubled": stored[0] - stored[1],
            "answers_by_status": dict(sorted(fleet.status.items())),
            "connection_errors": fleet.errors,
            "answers_5xx": fivexx,
            "pulls": fleet.pulls,
            "push_p95_ms": round(p95(fleet.push_ms), 1),
            "webhook_messages": messages,
            "deliveries_received": len(receiver.acked),
            "deliveries_duplicated": sum(n - 1 for n in receiver.acked.values() if n > 1),
            "deliveries_share": round(len(receiver.acked) / max(messages, 1), 4),
            "receiver_requests": receiver.requests,
            "delivery_lag_p95_ms": round(p95(receiver.lag_ms), 1),
        }
        print(json.dumps(report, indent=2))
    finally:
        for proc in procs.values():
            stop_process(proc)
        receiver.server.shutdown()
        drop_pg_database(name)


if __name__ == "__main__":
    main()
