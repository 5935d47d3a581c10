"""A lost gate leaks nothing (issue 21): its folder, copied off the device, holds no name, email,
code or credential in any encoding; the key lives in the platform's keyring or under a door PIN;
10 wrong PINs erase the gate; the organizer's wipe takes effect at the next contact and is
confirmed on the server; an event's data expires offline; the queue survives restarts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from scanner_app.custody import WIPED_FILE
from scanner_app.errors import GateError, Problem
from scanner_app.gate import STORE_FILE, Gate
from scanner_app.vault import KEYSLOT, KeyringStore, PinWrong
from tests.scanner.conftest import Clock, Door
from tests.server.conftest import add_attendee, serve

PIN = "482916"
NEEDLES = {
    "first": "Zebulonius",
    "last": "Quaggamire",
    "email": "zebulonius.q@leakcheck.example",
    "code": "LEAKCODE-77123",
    "walkin_first": "Walkerine",
    "walkin_last": "Inkognita",
    "walkin_email": "walkerine@leakcheck.example",
    "operator": "Operatorina Vexley",
    "second_first": "Ximenaïda",
}


def _restart(door: Door) -> None:
    door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))


def _gate_email(door: Door) -> None:
    answer = door.org.client.patch(f"/v1/events/{door.event_id}", json={"gate_email": True})
    assert answer.status_code == 200, answer.text


def _paired(door: Door, gate: Gate, name: str = "Lost gate") -> Gate:
    gate.pair(door.url, door.enrolment(name)["enrollment_code"], name)
    gate.configure(door.event_id, door.event["gate_a"]["id"], "in", NEEDLES["operator"])
    assert gate.sync_now()
    return gate


def _leaks(folder: Path, needles: list[str]) -> list[tuple[str, str, str]]:
    """(file, needle, encoding) of every needle found in any file of the folder."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for needle in needles:
            for text in {needle, needle.lower(), needle.casefold()}:
                for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                    if text.encode(encoding) in data:
                        found.append((path.name, text, encoding))
    return found


@pytest.fixture
def ring(tmp_path: Path) -> Iterator[PlaintextKeyring]:
    """keyring's own file backend, in a folder of its own (never the gate's)."""

    class FileRing(PlaintextKeyring):  # type: ignore[misc]
        @property
        def file_path(self) -> str:
            return str(tmp_path / "platform-keyring" / "keyring_pass.cfg")

    yield FileRing()


def test_a_copied_folder_shows_no_personal_data_and_no_credential(
    door: Door, tmp_path: Path
) -> None:
    _gate_email(door)  # even the emails the event lets gates have are sealed
    zeb = add_attendee(
        door.org,
        door.event_id,
        first_name=NEEDLES["first"],
        last_name=NEEDLES["last"],
        email=NEEDLES["email"],
        code=NEEDLES["code"],
    )
    add_attendee(door.org, door.event_id, first_name=NEEDLES["second_first"], last_name="Ør")
    folder, clock = tmp_path / "gate", Clock()
    gate = _paired(door, Gate(folder, clock=clock))
    assert gate.submit(zeb["qr"]).accepted  # online
    door.api.live.stop()
    clock.advance(120)
    assert gate.submit(NEEDLES["code"]).reason == "already_inside"  # offline, queued
    gate.register_walkin(
        NEEDLES["walkin_first"], NEEDLES["walkin_last"], NEEDLES["walkin_email"], "general"
    )
    assert [a.last_name for a in gate.search("quagg")] == [NEEDLES["last"]]
    token = gate.store.get_secret("device_token")
    assert token and gate.status().pending >= 2
    needles = [*NEEDLES.values(), zeb["qr"], zeb["qr"][-40:], token, token[-16:]]
    assert _leaks(folder, needles) == []  # live: the database and its write-ahead log
    gate.close()
    assert _leaks(folder, needles) == []  # closed and checkpointed
    assert sorted(p.name for p in folder.iterdir()) == [STORE_FILE]
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_restart_with_the_key_in_keyrings_file_backend(
    door: Door, tmp_path: Path, ring: PlaintextKeyring
) -> None:
    folder, clock = tmp_path / "gate", Clock()
    gate = _paired(door, Gate(folder, keyring=ring, clock=clock))
    ana = door.people[0]
    door.api.live.stop()
    assert gate.submit(ana["qr"]).accepted
    gate.close()
    assert KeyringStore(folder, ring).load() is not None
    clock.advance(120)
    again = Gate(folder, keyring=ring, clock=clock)  # a restart, still offline
    try:
        assert again.keys.locked is None
        assert again.status().pending == 1  # the queue survived
        assert again.submit(ana["qr"]).reason == "already_inside"  # decided from the cache
        assert again.submit(door.people[1]["qr"]).accepted
        _restart(door)
        assert again.sync_now()
        assert len(door.server_scans()) == 3
    finally:
        again.close()
    assert Gate(folder, keyring=PlaintextKeyring()).keys.locked is None  # another keyring:
    assert any(p.name.startswith(f"{STORE_FILE}.unreadable") for p in folder.iterdir())


def test_restart_with_a_door_pin(door: Door, tmp_path: Path) -> None:
    folder, clock = tmp_path / "gate", Clock()
    gate = Gate(folder, keyring=None, clock=clock)  # no secure storage on this machine
    assert gate.keys.locked == "choose"
    with pytest.raises(GateError) as locked:
        gate.status()
    assert locked.value.code is Problem.PIN_REQUIRED
    with pytest.raises(GateError) as invalid:
        gate.keys.unlock("12a")
    assert invalid.value.code is Problem.PIN_INVALID and gate.keys.locked == "choose"
    gate.keys.unlock(PIN)
    _paired(door, gate)
    door.api.live.stop()
    assert gate.submit(door.people[0]["qr"]).accepted
    gate.close()
    assert json.loads((folder / KEYSLOT).read_text())["failures"] == 0

    clock.advance(120)
    again = Gate(folder, keyring=None, clock=clock)
    try:
        assert again.keys.locked == "enter"
        with pytest.raises(PinWrong) as wrong:
            again.keys.unlock("000000")
        assert wrong.value.remaining == 9 and again.keys.locked == "enter"
        again.keys.unlock(PIN)
        assert again.status().pending == 1
        assert again.submit(door.people[0]["qr"]).reason == "already_inside"
    finally:
        again.close()
    with pytest.raises(PinWrong):  # the PIN from the environment (the CLI's way) is checked too
        Gate(folder, keyring=None, pin="000000")
    assert Gate(folder, keyring=None, pin=PIN).status().pending == 2


def _wait_out(folder: Path) -> None:
    """Time passes (the rate limit's wait is over): the slot's next try is now."""
    slot = json.loads((folder / KEYSLOT).read_text())
    slot["next_try_at"] = 0.0
    (folder / KEYSLOT).write_text(json.dumps(slot))


def test_ten_wrong_pins_erase_the_gate(door: Door, tmp_path: Path) -> None:
    folder = tmp_path / "gate"
    gate = _paired(door, Gate(folder, keyring=None, pin=PIN))
    door.api.live.stop()
    gate.submit(door.people[0]["qr"])
    gate.close()
    gate = Gate(folder, keyring=None)
    waits = []
    for attempt in range(1, 10):
        with pytest.raises(PinWrong) as wrong:
            gate.keys.unlock(f"{attempt:06d}")
        assert wrong.value.remaining == 10 - attempt
        waits.append(wrong.value.wait_s)
        if wrong.value.wait_s:
            with pytest.raises(PinWrong):  # while waiting even the right PIN is refused
                gate.keys.unlock(PIN)
            _wait_out(folder)
    assert waits[:2] == [0, 0] and waits[3] > 0 and waits == sorted(waits)  # slower and slower
    with pytest.raises(GateError) as erased:
        gate.keys.unlock("999999")
    assert erased.value.code is Problem.WIPED
    assert sorted(p.name for p in folder.iterdir()) == [WIPED_FILE]
    assert gate.keys.notice is not None and gate.keys.notice.reason.value == "pin"
    assert gate.keys.locked == "choose"  # a fresh gate: a new PIN for new, empty data
    gate.keys.unlock(PIN)
    assert not gate.paired and gate.status().attendees_cached == 0


def _device(door: Door, device_id: str) -> dict[str, Any]:
    devices = door.org.client.get("/v1/devices").json()["data"]
    return next(d for d in devices if d["id"] == device_id)


def test_a_wipe_ordered_while_offline_takes_effect_at_the_next_contact(
    door: Door, tmp_path: Path
) -> None:
    folder = tmp_path / "gate"
    gate = _paired(door, Gate(folder))
    device_id = gate.device_id
    assert device_id is not None
    door.api.live.stop()
    for person in door.people:
        assert gate.submit(person["qr"]).accepted  # queued, never uploaded
    _restart(door)
    ordered = door.org.client.post(f"/v1/devices/{device_id}/wipe")
    assert ordered.status_code == 202, ordered.text
    assert _device(door, device_id)["wipe_confirmed_at"] is None
    try:
        assert not gate.sync_now()  # the next contact: the push is refused, the gate erases
        assert door.server_scans() == []  # it pushed nothing more
        status = gate.status()
        assert status.wiped == "organizer" and not status.paired
        assert status.attendees_cached == 0 and status.pending == 0
        assert gate.search("ana") == [] and gate.recent() == []
        device = _device(door, device_id)
        assert device["wipe_confirmed_at"] is not None and device["wipe_reason"] == "organizer"
        assert device["pending_uploads"] == 3  # what went with the wipe
        fresh = {STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", WIPED_FILE}
        assert {p.name for p in folder.iterdir()} <= fresh  # a new, empty store, a new key
    finally:
        gate.close()


def test_expiry_erases_the_event_offline_and_a_sync_renews_it(door: Door, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ends = (now + timedelta(hours=1)).isoformat()
    answer = door.org.client.patch(
        f"/v1/events/{door.event_id}", json={"ends_at": ends, "device_data_ttl_hours": 1}
    )
    assert answer.status_code == 200, answer.text
    clock = Clock()
    folder = tmp_path / "gate"
    gate = _paired(door, Gate(folder, clock=clock))
    door.api.live.stop()
    clock.advance(3600)
    assert gate.submit(door.people[0]["qr"]).accepted  # within retention, offline
    clock.advance(2 * 3600)  # past the event's end + 1 h, with no sync
    status = gate.status()
    assert status.expired and status.attendees_cached == 0
    assert status.pending == 1  # the queue is kept for the next upload
    with pytest.raises(GateError) as expired:
        gate.submit(door.people[1]["qr"])
    assert expired.value.code is Problem.EXPIRED
    gate.close()
    gate = Gate(folder, clock=clock)  # still expired after a restart
    try:
        assert gate.status().expired
        _restart(door)
        later = (now + timedelta(hours=10)).isoformat()
        door.org.client.patch(f"/v1/events/{door.event_id}", json={"ends_at": later})
        assert gate.sync_now()  # uploads the queue, and the new end renews the event
        assert len(door.server_scans()) == 1
        status = gate.status()
        assert not status.expired and status.attendees_cached == 3
        assert gate.submit(door.people[1]["qr"]).accepted
    finally:
        gate.close()


def test_an_event_that_asks_for_a_pin_moves_the_key_under_one(door: Door, tmp_path: Path) -> None:
    answer = door.org.client.patch(f"/v1/events/{door.event_id}", json={"require_device_pin": True})
    assert answer.status_code == 200, answer.text
    folder = tmp_path / "gate"
    gate = _paired(door, Gate(folder))  # the platform's keyring (the suite's)
    try:
        assert gate.status().pin_wanted and gate.keys.locked is None
        with pytest.raises(GateError):
            gate.keys.set_pin("12")
        gate.keys.set_pin(PIN)
        assert not gate.status().pin_wanted
        assert KeyringStore(folder, keyring.get_keyring()).load() is None
    finally:
        gate.close()
    again = Gate(folder)
    assert again.keys.locked == "enter"  # the keyring no longer opens it
    again.keys.unlock(PIN)
    assert again.paired and again.status().attendees_cached == 3
    again.close()
