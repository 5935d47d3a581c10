"""`doorcheck scan` and `doorcheck pair` as real processes against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner_app.gate import Gate
from tests.conftest import DOORCHECK, serve
from tests.scanner.conftest import Door
from tests.scanner.qrframes import empty_frame, qr_frame, write_image_dir


def _paired(door: Door, make_gate: Callable[..., Gate], name: str = "kiosk") -> Path:
    gate = make_gate(name)
    assert gate.sync_now()
    gate.close()
    return gate.data_dir


def _scan_args(door: Door, data_dir: Path, *extra: str) -> list[str]:
    return [
        DOORCHECK,
        "scan",
        "--event",
        door.event_id,
        "--checkpoint",
        door.event["gate_a"]["id"],
        "--data-dir",
        str(data_dir),
        "--json",
        *extra,
    ]


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_scan_reads_stdin_and_prints_json(door: Door, make_gate: Callable[..., Gate]) -> None:
    data_dir = _paired(door, make_gate)
    ana = door.people[0]
    codes = f"{ana['qr']}\nnot-a-ticket\n{ana['qr'].lower()}\n"
    done = subprocess.run(
        _scan_args(door, data_dir, "--source", "-", "--sync-timeout", "10"),
        input=codes.encode(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    *verdicts, summary = _lines(done.stdout.decode())
    assert [v["type"] for v in verdicts] == ["verdict"] * 3
    assert [v["reason"] for v in verdicts] == ["ok", "unknown_code", "ok"]
    assert [v["repeat"] for v in verdicts] == [False, False, True]
    assert verdicts[0]["attendee"]["first_name"] == "Ana" and verdicts[0]["offline"] is False
    assert set(verdicts[0]) == {
        "type",
        "id",
        "code",
        "status",
        "reason",
        "warnings",
        "attendee",
        "offline",
        "scanned_at",
        "repeat",
    }
    assert verdicts[2]["id"] is None
    assert summary == {
        "type": "summary",
        "scanned": 3,
        "accepted": 1,
        "denied": 1,
        "pending_upload": 0,
    }
    assert sorted(s["id"] for s in door.server_scans()) == sorted(
        v["id"] for v in verdicts if v["id"]
    )


def test_sigkill_between_scans_loses_nothing(door: Door, make_gate: Callable[..., Gate]) -> None:
    data_dir = _paired(door, make_gate)
    port = int(door.url.rsplit(":", 1)[1])
    door.api.live.stop()
    proc = subprocess.Popen(
        _scan_args(door, data_dir, "--source", "-"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen = []
    for person in door.people[:2]:
        proc.stdin.write(f"{person['qr']}\n".encode())
        proc.stdin.flush()
        seen.append(json.loads(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stderr is not None and b"server unreachable" in proc.stderr.read()
    assert all(v["status"] == "accepted" and v["offline"] for v in seen)

    gate = Gate(data_dir)
    try:
        assert sorted(item.id for item in gate.outbox()) == sorted(v["id"] for v in seen)
        door.api.live = serve(door.api.app, port)
        assert gate.sync_now()
        assert sorted(s["id"] for s in door.server_scans()) == sorted(v["id"] for v in seen)
    finally:
        gate.close()


def test_scan_refuses_clearly(door: Door, make_gate: Callable[..., Gate], tmp_path: Path) -> None:
    unpaired = subprocess.run(
        _scan_args(door, tmp_path / "nobody", "--source", "-"),
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert unpaired.returncode == 1 and b"not paired" in unpaired.stderr
    data_dir = _paired(door, make_gate)
    args = _scan_args(door, data_dir, "--source", "-")
    args[args.index("--checkpoint") + 1] = "cp_nope"
    wrong = subprocess.run(args, input=b"", capture_output=True, timeout=60)
    assert wrong.returncode == 2 and b"unknown event or checkpoint" in wrong.stderr
    direction = subprocess.run(
        _scan_args(door, data_dir, "--source", "-", "--direction", "sideways"),
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert direction.returncode == 2 and b"--direction" in direction.stderr


def test_pair_command(door: Door, tmp_path: Path) -> None:
    enrolment = door.enrolment("cli")
    done = subprocess.run(
        [
            DOORCHECK,
            "pair",
            "--server",
            door.url,
            "--code",
            enrolment["enrollment_code"],
            "--data-dir",
            str(tmp_path / "d"),
            "--name",
            "Gate C",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert door.event_id in done.stdout.decode() and "Gate A" in done.stdout.decode()
    again = subprocess.run(
        [
            DOORCHECK,
            "pair",
            "--server",
            door.url,
            "--code",
            enrolment["enrollment_code"],
            "--data-dir",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 1 and b"unknown, used or expired" in again.stderr
    missing = subprocess.run(
        [DOORCHECK, "pair", "--data-dir", str(tmp_path / "f")], capture_output=True, timeout=60
    )
    assert missing.returncode == 1 and b"--server and --code" in missing.stderr


def test_scan_reads_an_image_folder_through_the_real_decoder(
    door: Door, make_gate: Callable[..., Gate], tmp_path: Path
) -> None:
    data_dir = _paired(door, make_gate)
    ana, bo = door.people[0], door.people[1]
    frames = [
        empty_frame(1),
        qr_frame(ana["qr"], perspective=0.3, seed=2),
        qr_frame(ana["qr"], perspective=0.3, noise=4, seed=3),  # still in view: read once
        empty_frame(4),
        *[empty_frame(10 + i) for i in range(12)],  # long enough for the code to leave
        qr_frame(bo["qr"], inverted=True, blur=0.8, seed=5),  # dark-mode phone screen
        empty_frame(30),
        qr_frame(b"\x00\x01\xfe\xffbinary", seed=6),
        empty_frame(31),
        qr_frame("HELLO-WORLD", rotation=20, seed=7),
    ]
    folder = tmp_path / "frames"
    write_image_dir(folder, frames)
    done = subprocess.run(
        _scan_args(door, data_dir, "--source", str(folder)),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    *verdicts, summary = _lines(done.stdout.decode())
    assert [(v["reason"], (v["attendee"] or {}).get("first_name")) for v in verdicts] == [
        ("ok", "Ana"),
        ("ok", "Bo"),
        ("malformed_code", None),
        ("unknown_code", None),
    ]
    assert summary["scanned"] == 4 and summary["pending_upload"] == 0


def test_scan_opens_a_pin_locked_gate_with_doorcheck_pin_only(door: Door, tmp_path: Path) -> None:
    """On a machine without secure storage the key is under a door PIN: from the environment
    (never a flag), and a clear refusal without it or with a wrong one."""
    data_dir = tmp_path / "kiosk"
    gate = Gate(data_dir, keyring=None, pin="2468")
    gate.pair(door.url, door.enrolment("kiosk")["enrollment_code"], "kiosk")
    assert gate.sync_now()
    gate.close()
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("DOORCHECK_PIN", None)
    args = _scan_args(door, data_dir, "--source", "-", "--sync-timeout", "5")
    code = door.people[0]["qr"].encode() + b"\n"
    locked = subprocess.run(args, input=code, capture_output=True, timeout=120, env=env)
    assert locked.returncode == 3
    assert "locked by a door PIN: set DOORCHECK_PIN" in locked.stderr.decode()
    wrong = subprocess.run(
        args, input=code, capture_output=True, timeout=120, env={**env, "DOORCHECK_PIN": "1111"}
    )
    assert wrong.returncode == 3 and "wrong PIN: 9 tries left" in wrong.stderr.decode()
    done = subprocess.run(
        args, input=code, capture_output=True, timeout=120, env={**env, "DOORCHECK_PIN": "2468"}
    )
    assert done.returncode == 0, done.stderr.decode()
    assert _lines(done.stdout.decode())[0]["reason"] == "ok"
