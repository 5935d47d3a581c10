"""The scanner app's speed in web mode: from a code entering the camera's view to its verdict on
screen in Chromium, and how responsive the UI stays while the gate pulls a large snapshot.

A real server runs in this process; `doorcheck scanner --web --camera door.avi` runs in its own
process with `DOORCHECK_TRACE_FILE` set (frames read, codes decided, verdicts sent, a 50 ms
heartbeat of its UI loop); headless Chromium records with a MutationObserver when each verdict
appears in the semantics tree. Same machine, so the wall clocks agree.

Run: .venv/bin/python bench/bench_ui.py [--codes 12] [--typed 12] [--attendees 100000]
With --attendees, that many more attendees are imported first: the app's first pull after
"Start scanning" downloads them while codes are typed and shown to the camera.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_server  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    DOORCHECK,
    free_port,
    stop_process,
    wait_http,
)
from tests.scanner.qrframes import empty_frame, qr_frame, write_video  # noqa: E402
from tests.ui.browser import type_into  # noqa: E402

WAIT_MS = 120_000  # an upper bound for a slow machine, not a measurement
# Records when a verdict overlay appears or changes: {t: Date.now(), label}.
OBSERVER_JS = """() => {
  window.__verdicts = [];
  const last = new WeakMap();
  const look = () => {
    for (const n of document.querySelectorAll('[flt-semantics-identifier="verdict"]')) {
      const label = (n.getAttribute('aria-label') || '') + ' ' + n.textContent;
      if (last.get(n) !== label) {
        last.set(n, label);
        window.__verdicts.push({t: Date.now(), label});
      }
    }
  };
  new MutationObserver(look).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true, characterData: true});
}"""


# --- the door: server, event, people, video -----------------------------------------------------


@dataclass
class Door:
    url: str
    admin: httpx.Client
    event_id: str
    pairing_uri: str
    camera: list[dict[str, Any]]  # shown to the camera, in this order
    typed: list[dict[str, Any]]  # typed like a handheld scanner
    total: int  # attendees in the event
    pulls: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of /pull


def track_pulls(app: Any, pulls: list[tuple[float, float]]) -> Any:
    """The server app, noting when each device pull request starts and ends (wall clock)."""

    async def tracked(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/pull"):
            await app(scope, receive, send)
            return
        start = time.time()
        try:
            await app(scope, receive, send)
        finally:
            pulls.append((start, time.time()))

    return tracked


def person(admin: httpx.Client, event_id: str, first: str) -> dict[str, Any]:
    body = {"first_name": first, "last_name": "Bench", "ticket_type": "general"}
    response = admin.post(f"/v1/events/{event_id}/attendees", json=body)
    response.raise_for_status()
    return dict(response.json())


def make_door(url: str, key: str, args: argparse.Namespace, pulls: list[Any]) -> Door:
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600)
    eid = admin.post("/v1/events", json={"name": "Bench", "slug": "bench"}).json()["id"]
    admin.post(f"/v1/events/{eid}/ticket-types", json={"name": "General", "slug": "general"})
    zone = admin.post(f"/v1/events/{eid}/zones", json={"name": "Hall"}).json()
    admin.post(
        f"/v1/events/{eid}/checkpoints",
        json={"name": "Gate 1", "zone_id": zone["id"], "direction": "both"},
    ).raise_for_status()
    camera = [person(admin, eid, f"Cam{i:02d}") for i in range(args.codes)]
    typed = [person(admin, eid, f"Key{i:02d}") for i in range(args.typed)]
    if args.attendees:
        rows = "first_name,last_name,email,ticket_type\n" + "".join(
            f"Person{i},Crowd,p{i}@example.com,general\n" for i in range(args.attendees)
        )
        t = time.perf_counter()
        response = admin.post(
            f"/v1/events/{eid}/attendees/import",
            content=rows,
            headers={"Content-Type": "text/csv"},
        )
        response.raise_for_status()
        print(f"setup: imported {args.attendees:,} attendees in {time.perf_counter() - t:.1f} s")
    enrolment = admin.post("/v1/devices", json={"name": "Bench door"}).json()
    total = len(camera) + len(typed) + args.attendees
    return Door(url, admin, eid, enrolment["pairing_uri"], camera, typed, total, pulls)


@dataclass(frozen=True)
class Video:
    path: Path
    first_frame: dict[str, int]  # attendee name -> the number (from 1) of its first frame


def make_video(path: Path, people: list[dict[str, Any]], fps: float, lead_s: float) -> Video:
    """A lead-in of `lead_s` without a code, then per person 1.5 s without a code and 0.5 s with
    it. 1280x720 door scenes (tests/scanner/qrframes.py), each code its own placement."""
    lead, gap, shown = int(lead_s * fps), int(1.5 * fps), int(0.5 * fps)
    empties = [empty_frame(seed=s) for s in range(4)]
    frames: list[Any] = [empties[i % 4] for i in range(lead)]
    first: dict[str, int] = {}
    for i, p in enumerate(people):
        frames += [empties[(i + j) % 4] for j in range(gap)]
        first[name_of(p)] = len(frames) + 1
        frames += [qr_frame(p["qr"], seed=i)] * shown
    frames += [empties[0]] * gap
    write_video(path, frames, fps=fps)
    return Video(path, first)


def name_of(p: dict[str, Any]) -> str:
    return f"{p['first_name']} {p['last_name']}"


# --- the app ---------------------------------------------------------------------------------


@dataclass
class App:
    url: str
    proc: subprocess.Popen[bytes]
    trace: Path
    data: Path
    log: Path


def start_app(work: Path, video: Video) -> App:
    port = free_port()
    trace, data, log = work / "trace.jsonl", work / "gate", work / "scanner.log"
    env = {
        **os.environ,
        "DOORCHECK_TRACE_FILE": str(trace),
        "DOORCHECK_VERDICT_SECONDS": "1",
        "FLET_WEB_NO_CDN": "1",
        "DOORCHECK_PIN": os.environ.get("DOORCHECK_PIN", "482916"),  # the gate's key (issue 21)
    }
    command = [DOORCHECK, "scanner", "--web", "--port", str(port), "--data-dir", str(data)]
    command += ["--camera", str(video.path)]
    out = log.open("wb")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    url = f"http://127.0.0.1:{port}"
    wait_http(url, proc, log)
    return App(url, proc, trace, data, log)


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class CacheWatch:
    """Polls the gate's cache from outside the app: when it first holds `total` attendees."""

    def __init__(self, db: Path, total: int) -> None:
        self.db, self.total = db, total
        self.full_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and self.full_at is None:
            try:
                with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as conn:
                    (count,) = conn.execute("SELECT count(*) FROM attendees").fetchone()
                if count >= self.total:
                    self.full_at = time.time()
            except sqlite3.Error:
                pass
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- the browser -----------------------------------------------------------------------------


def node(page: Any, identifier: str) -> Any:
    return page.locator(f'[flt-semantics-identifier="{identifier}"]').first


def shown_at(page: Any, name: str, after: float) -> float | None:
    """When (wall clock, s) a verdict naming `name` first appeared after `after`."""
    for item in page.evaluate("() => window.__verdicts"):
        if name in item["label"] and item["t"] / 1000 >= after:
            return float(item["t"]) / 1000
    return None


def wait_shown(page: Any, name: str, after: float, timeout: float = 30.0) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = shown_at(page, name, after)
        if found is not None:
            return found
        page.wait_for_timeout(20)
    return None


def open_scan_screen(page: Any, app: App, door: Door) -> float:
    """Pair with the pairing link and start scanning; answers when the scan screen showed."""
    page.goto(app.url)
    page.wait_for_selector("flutter-view", timeout=WAIT_MS)
    page.locator("flt-semantics-placeholder").dispatch_event("click")
    page.evaluate(OBSERVER_JS)
    node(page, "screen-pair").wait_for(state="attached", timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # the fields take keys once the canvas has painted
    type_into(page, re.compile("pairing link"), door.pairing_uri, enter=True, wait_ms=WAIT_MS)
    node(page, "screen-setup").wait_for(state="attached", timeout=WAIT_MS)
    page.get_by_role("button", name="Start scanning").click()
    node(page, "screen-scan").wait_for(state="attached", timeout=WAIT_MS)
    at = time.time()
    page.get_by_role("textbox", name=re.compile("^Ticket code")).click()
    return at


@dataclass(frozen=True)
class Typed:
    name: str
    enter: float  # when Enter was pressed
    shown: float | None


def next_verdict(page: Any, seen: int, timeout: float = 30.0) -> float | None:
    """When the first verdict after the `seen` first ones that is not a camera code's appeared:
    a ticket whose attendee is not cached yet has no name to look for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = page.evaluate("() => window.__verdicts")[seen:]
        found = next((i for i in items if "Cam" not in i["label"]), None)
        if found is not None:
            return float(found["t"]) / 1000
        page.wait_for_timeout(10)
    return None


def type_codes(page: Any, people: list[dict[str, Any]], until: Any) -> list[Typed]:
    """Type codes like a handheld scanner (text, then Enter) one after the other, taking them
    from `people`, while `until()` is False; each waits for its verdict."""
    out = []
    while people and not until():
        p = people.pop(0)
        page.wait_for_function(  # a new overlay, not the same one relabelled
            """() => !document.querySelector('[flt-semantics-identifier="verdict"]')""",
            timeout=WAIT_MS,
        )
        page.keyboard.insert_text(p["qr"])
        seen = page.evaluate("() => window.__verdicts.length")
        enter = time.time()
        page.keyboard.press("Enter")
        out.append(Typed(name_of(p), enter, next_verdict(page, seen)))
        page.wait_for_timeout(300)
    return out


# --- figures ---------------------------------------------------------------------------------


CAMERA_STAGES = (
    "first frame read -> decoded",
    "decoded -> decided",
    "decided -> sent",
    "sent -> shown",
)
TYPED_STAGES = ("Enter -> handler", "handler -> decided", "decided -> sent", "sent -> shown")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"n={len(values)} p50 {statistics.median(values):.0f} ms, p95 {pct(values, 0.95):.0f} ms,"
        f" max {max(values):.0f} ms"
    )


def first_after(events: list[dict[str, Any]], kind: str, name: str, after: float) -> Any:
    return next(
        (e for e in events if e["event"] == kind and e.get("name") == name and e["t"] >= after),
        None,
    )


def camera_figures(
    events: list[dict[str, Any]], video: Video, page: Any, window: tuple[float, float] | None
) -> None:
    frames = {e["n"]: e["t"] for e in events if e["event"] == "frame"}
    rows: dict[str, list[list[float]]] = {"idle": [], "sync": []}
    missed = []
    for name, number in video.first_frame.items():
        read = frames.get(number)
        decided = first_after(events, "camera_verdict", name, read or 0.0)
        sent = first_after(events, "verdict_sent", name, decided["t"] if decided else 0.0)
        shown = shown_at(page, name, read or 0.0)
        if read is None or decided is None or sent is None or shown is None:
            missed.append(name)
            continue
        stages = [
            decided["decoded_at"] - read,
            decided["t"] - decided["decoded_at"],
            sent["t"] - decided["t"],
            shown - sent["t"],
            shown - read,
        ]
        busy = window is not None and window[0] <= read <= window[1]
        rows["sync" if busy else "idle"].append([s * 1000 for s in stages])
    for label, data in rows.items():
        if not data:
            continue
        print(f"camera -> verdict on screen ({label}): {summary([r[4] for r in data])}")
        for i, stage in enumerate(CAMERA_STAGES):
            print(f"    {stage}: {summary([r[i] for r in data])}")
        print("    each (ms): " + ", ".join(f"{r[4]:.0f}" for r in data))
    if missed:
        print(f"camera: no verdict seen for {len(missed)}: {', '.join(missed)}")


def typed_figures(
    events: list[dict[str, Any]], typed: list[Typed], window: tuple[float, float] | None
) -> None:
    """Typed codes are decided one at a time: a code's `keyboard_verdict` is the first one
    after its Enter and before the next code's."""
    rows: dict[str, list[list[float]]] = {"idle": [], "sync": []}
    decided = [e for e in events if e["event"] == "keyboard_verdict"]
    ends = [t.enter for t in typed[1:]] + [float("inf")]
    for item, end in zip(typed, ends, strict=True):
        got = next((e for e in decided if item.enter - 0.05 <= e["received_at"] < end), None)
        sent = first_after(events, "verdict_sent", got["name"], got["t"]) if got else None
        if item.shown is None or got is None or sent is None:
            print(f"typed: no verdict seen for {item.name}")
            continue
        stages = [
            got["received_at"] - item.enter,
            got["t"] - got["received_at"],
            sent["t"] - got["t"],
            item.shown - sent["t"],
            item.shown - item.enter,
        ]
        busy = window is not None and window[0] <= item.enter <= window[1]
        rows["sync" if busy else "idle"].append([s * 1000 for s in stages])
    unnamed = sum(1 for e in decided if not e["name"])
    for label, data in rows.items():
        if not data:
            continue
        print(f"typed code, Enter -> verdict on screen ({label}): {summary([r[4] for r in data])}")
        for i, stage in enumerate(TYPED_STAGES):
            print(f"    {stage}: {summary([r[i] for r in data])}")
    if unnamed:
        print(f"    ({unnamed} typed tickets were decided before their attendee was cached)")


def loop_figures(
    events: list[dict[str, Any]], since: float, window: tuple[float, float] | None
) -> None:
    beats = [e for e in events if e["event"] == "heartbeat" and e["t"] >= since]
    busy = [e["lag_ms"] for e in beats if window and window[0] <= e["t"] <= window[1]]
    idle = [e["lag_ms"] for e in beats if not (window and window[0] <= e["t"] <= window[1])]
    for label, lags in (("idle", idle), ("sync", busy)):
        if lags:
            over = sum(1 for x in lags if x > 200)
            print(
                f"UI loop lag ({label}, 50 ms heartbeat): {summary(lags)},"
                f" p99 {pct(lags, 0.99):.0f} ms, {over} beats over 200 ms"
            )


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> None:
    from playwright.sync_api import sync_playwright

    pulls: list[tuple[float, float]] = []
    with bench_server(
        f"sqlite:///{work / 'server.db'}", work, wrap=lambda a: track_pulls(a, pulls)
    ) as (live, key):
        door = make_door(live.url, key, args, pulls)
        # With a large pull, the first codes come early enough to be read while it runs.
        lead_s = 0.5 if args.attendees else 3.0
        video = make_video(work / "door.avi", door.camera, args.fps, lead_s)
        app = start_app(work, video)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1100, "height": 860})
                try:
                    measure(args, door, video, app, page)
                except Exception:
                    page.screenshot(path=str(work / "failure.png"))
                    print(f"scanner log:\n{app.log.read_text(errors='replace')[-3000:]}")
                    raise
                finally:
                    browser.close()
        finally:
            stop_process(app.proc)


def measure(args: argparse.Namespace, door: Door, video: Video, app: App, page: Any) -> None:
    watch = CacheWatch(app.data / "scanner.db", door.total)
    try:
        scanning = open_scan_screen(page, app, door)
        people = list(door.typed)
        typed: list[Typed] = []
        if args.attendees:  # type during the pull, then (idle) the rest
            typed += type_codes(page, people, lambda: watch.full_at is not None)
        last = max(video.first_frame.values())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the camera's codes (idle, or the pull's end)
            frames = [e for e in read_trace(app.trace) if e["event"] == "frame"]
            if frames and frames[-1]["n"] > last + args.fps:
                break
            page.wait_for_timeout(200)
        page.wait_for_timeout(1500)
        typed += type_codes(page, people, lambda: False)
        page.wait_for_timeout(500)
    finally:
        watch.stop()
    events = read_trace(app.trace)
    starts = [s for s, _ in door.pulls if s >= scanning - 5]
    window = None
    if starts and watch.full_at is not None:
        window = (min(starts), watch.full_at)
        print(
            f"first pull of {door.total:,} attendees by the app: "
            f"{window[1] - window[0]:.2f} s (first /pull request -> all in the gate's cache)"
        )
    camera_figures(events, video, page, window if args.attendees else None)
    typed_figures(events, typed, window if args.attendees else None)
    loop_figures(events, scanning, window if args.attendees else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codes", type=int, default=12, help="codes shown to the camera")
    parser.add_argument("--typed", type=int, default=12, help="codes typed (handheld scanner)")
    parser.add_argument("--attendees", type=int, default=0, help="more attendees to pull")
    parser.add_argument("--fps", type=float, default=30.0, help="the video's frame rate")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("bench_ui needs Debian's chromium")
    work = Path(tempfile.mkdtemp(prefix="dc-bench-ui-"))
    try:
        run(args, work)
    finally:
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
