"""`doorcheck pair` and `doorcheck scan`: the headless gate on the command line.

`scan --json` is how a kiosk, an integration or a test drives a gate: one JSON verdict per line
and a summary line when a finite source (a video file, an image folder, or `-` for lines on
standard input, as a handheld scanner types them) ends.

The gate's data key comes from the system keyring, or from a door PIN: `$DOORCHECK_PIN`, else
asked for on the terminal (never a command-line flag: other users can read those).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["open_gate", "pair", "scan"]

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The gate's folder (cache, queue, credentials). Default: $DOORCHECK_DATA_DIR "
        "or ~/.local/share/doorcheck.",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"doorcheck: {message}", err=True)
    return typer.Exit(code)


def open_gate(data_dir: Path | None) -> Any:
    """The gate in `data_dir`, opened with its key (the keyring, `$DOORCHECK_PIN`, or the PIN
    typed at the terminal); a clear error and exit status 3 when it cannot be opened."""
    from scanner_app.errors import GateError, Problem
    from scanner_app.gate import Gate

    try:
        gate = Gate.open(data_dir, pin=os.environ.get("DOORCHECK_PIN") or None)
        if gate.keys.locked is not None:
            if not sys.stdin.isatty():
                gate.close()
                raise _fail(_PIN_HELP[gate.keys.locked], 3)
            prompt = (
                "door PIN: " if gate.keys.locked == "enter" else "choose a door PIN (4-12 digits): "
            )
            gate.keys.unlock(getpass.getpass(prompt))
    except GateError as exc:
        wiped = " (its data was erased)" if exc.code is Problem.WIPED else ""
        raise _fail(f"{exc}{wiped}", 3) from None
    return gate


_PIN_HELP = {
    "enter": "this gate's data is locked by a door PIN: set DOORCHECK_PIN or run it on a terminal",
    "choose": "no secure key storage on this machine: choose a door PIN (4-12 digits) in "
    "DOORCHECK_PIN",
}


def pair(
    server: Annotated[
        str | None, typer.Option(help="Server URL, e.g. http://10.0.0.5:8000.")
    ] = None,
    code: Annotated[str | None, typer.Option(help="Enrolment code from the admin.")] = None,
    uri: Annotated[
        str | None, typer.Argument(help="Or the pairing URI doorcheck://pair?server=…&code=….")
    ] = None,
    name: Annotated[str, typer.Option(help="This device's name, as admins see it.")] = "Scanner",
    data_dir: DataDir = None,
) -> None:
    """Enrol this device with a server (once) and download its event list."""
    from scanner_app.gate import PairingError

    if uri is None and (server is None or code is None):
        raise _fail("give --server and --code, or the pairing URI")
    gate = open_gate(data_dir)
    try:
        if uri is not None:
            gate.pair_uri(uri, name)
        else:
            assert server is not None and code is not None
            gate.pair(server, code, name)
        events = gate.events()
        typer.echo(f"paired as {gate.device_id} with {gate.server_url}")
        for event in events:
            checkpoints = ", ".join(f"{c.name} ({c.id})" for c in event.checkpoints)
            typer.echo(f"  event {event.name} ({event.id}): {checkpoints or 'no checkpoints'}")
        status = gate.status()
        if status.last_error:
            typer.echo(f"note: {status.last_error}", err=True)
    except PairingError as exc:
        raise _fail(str(exc)) from None
    finally:
        gate.close()


def scan(
    event: Annotated[str, typer.Option(help="Event id (evt_…).")],
    checkpoint: Annotated[str, typer.Option(help="Checkpoint id (cp_…).")],
    source: Annotated[
        str,
        typer.Option(help="Camera INDEX, a VIDEO file, an IMAGE_DIR, or - for lines on stdin."),
    ],
    direction: Annotated[str, typer.Option(help="in or out (for `both` checkpoints).")] = "in",
    operator: Annotated[
        str, typer.Option(help="The operator's name, kept with each reading.")
    ] = "",
    data_dir: DataDir = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    sync_timeout: Annotated[
        float, typer.Option(min=0, max=3600, help="Seconds to upload the queue at the end.")
    ] = 10.0,
) -> None:
    """Run a headless gate: sync, read codes from SOURCE, print a verdict for each."""
    from scanner_app.gate import GateError
    from scanner_app.state import GateVerdict

    if direction not in ("in", "out"):
        raise _fail("--direction must be in or out", 2)
    gate = open_gate(data_dir)
    try:
        notice = gate.keys.notice
        if notice is not None:
            raise _fail(f"this device's data was erased ({notice.reason.value}): pair it again")
        if gate.revoked:
            raise _fail("this device was revoked: pair it again")
        if not gate.paired:
            raise _fail("this device is not paired: run `doorcheck pair --server URL --code CODE`")
        gate.refresh_events()
        try:
            gate.configure(event, checkpoint, direction, operator)
        except GateError as exc:
            raise _fail(str(exc), 2) from None
        if not gate.sync_now(timeout=max(sync_timeout, 5.0)):
            status = gate.status()
            if status.wiped:
                raise _fail(f"this device's data was erased ({status.wiped}): pair it again")
            typer.echo(
                f"doorcheck: server unreachable ({status.last_error}); scanning offline from "
                f"the cache ({status.attendees_cached} attendees, {status.pending} pending)",
                err=True,
            )
        gate.start()
        counts = {"scanned": 0, "accepted": 0, "denied": 0}
        lock = threading.Lock()

        def emit(verdict: GateVerdict) -> None:
            with lock:
                counts["scanned"] += 1
                if not verdict.repeat:  # a repeat shows a verdict already counted
                    counts["accepted" if verdict.accepted else "denied"] += 1
                if json_out:
                    line = json.dumps(verdict.as_json(), ensure_ascii=False)
                else:
                    who = verdict.attendee.name if verdict.attendee else repr(verdict.code[:40])
                    mark = "ADMIT" if verdict.accepted else "DENY "
                    line = (
                        f"{mark} {verdict.reason:<24} {who}"
                        + ("  (offline)" if verdict.offline else "")
                        + ("  (repeat)" if verdict.repeat else "")
                    )
                typer.echo(line)
                sys.stdout.flush()

        with contextlib.suppress(KeyboardInterrupt):
            _read(gate, source, emit)
        gate.stop()
        pending = gate.drain(sync_timeout)
        summary: dict[str, Any] = {"type": "summary", **counts, "pending_upload": pending}
        typer.echo(json.dumps(summary) if json_out else _summary_text(summary))
    finally:
        gate.close()


def _summary_text(summary: dict[str, Any]) -> str:
    return (
        f"{summary['scanned']} scanned, {summary['accepted']} accepted, "
        f"{summary['denied']} denied, {summary['pending_upload']} waiting for upload"
    )


def _read(gate: Any, source: str, emit: Any) -> None:
    """Feed every code from the source to `emit` until a finite source ends."""
    if source == "-":
        for line in sys.stdin.buffer:
            raw = line.rstrip(b"\r\n")
            if raw:
                emit(gate.submit(raw, source="keyboard"))
        return
    from scanner_app.camera_feed import CameraFeed
    from scanner_app.state import CameraListener

    problems: list[str] = []
    feed = CameraFeed(gate, source, realtime=False)
    feed.subscribe(CameraListener(verdict=emit, pairing=lambda _uri: None, problem=problems.append))
    feed.start()
    try:
        if feed.problem is not None:
            raise _fail(feed.problem, 2)
        while not feed.wait_done(0.2):
            pass
    finally:
        feed.stop()
    if problems and feed.problem is not None:
        typer.echo(f"doorcheck: {feed.problem}", err=True)
