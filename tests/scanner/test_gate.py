"""The headless gate against a real server on loopback: pairing, cache, the pipeline, the queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner_app.admin import AdminClient, AdminError
from scanner_app.gate import Gate, GateError, PairingError, WalkinInvalid
from tests.conftest import serve
from tests.scanner.conftest import Clock, Door
from tests.server.conftest import add_attendee


def test_pair_sync_and_scan_online(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.paired
    assert [e.id for e in gate.events()] == [door.event_id]
    assert gate.sync_now()
    assert gate.status().attendees_cached == 3
    ana = door.people[0]
    verdict = gate.submit(ana["qr"])
    assert verdict.status == "accepted" and verdict.reason == "ok"
    assert verdict.attendee is not None and verdict.attendee.first_name == "Ana"
    assert not verdict.offline
    again = gate.submit(ana["qr"])
    assert again.reason == "ok" and again.repeat and again.id is None
    assert gate.sync_now()
    scans = door.server_scans()
    assert [(s["id"], s["status"]) for s in scans] == [(verdict.id, "accepted")]
    assert gate.status().pending == 0


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll until `predicate` holds (a bound on waiting, not a speed check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_offline_from_cache_then_drain_exactly_once(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    clock = Clock()
    gate = make_gate(clock=clock)
    assert gate.sync_now()
    # Dee is created after the gate's last pull: her signed ticket was never cached.
    dee = add_attendee(door.org, door.event_id, first_name="Dee", last_name="Fox")
    port = int(door.url.rsplit(":", 1)[1])
    door.api.live.stop()
    assert not gate.sync_now(timeout=2)
    status = gate.status()
    assert not status.online and status.offline_since is not None and status.last_error

    ana, bo = door.people[0], door.people[1]
    first = gate.submit(ana["qr"])
    assert first.accepted and first.offline
    clock.advance(10)
    again = gate.submit(ana["qr"])  # anti-passback holds within this device, offline
    assert (again.status, again.reason) == ("denied", "already_inside")
    assert again.inside_via == "Gate A" and again.inside_since == first.scanned_at
    signed = gate.submit(dee["qr"])
    assert signed.accepted and signed.attendee is not None
    assert signed.attendee.id == dee["id"] and signed.attendee.ticket_type == "general"
    vip = gate.submit(bo["code"] or bo["qr"])
    assert vip.accepted and vip.attendee is not None and vip.attendee.is_vip
    assert gate.stats().occupancy == 3 and gate.stats().entries_today == 3
    assert gate.status().pending == 4

    door.api.live = serve(door.api.app, port)
    gate.start()
    assert wait_for(lambda: gate.status().pending == 0)
    scans = door.server_scans()
    recorded = sorted(s["id"] for s in scans)
    assert recorded == sorted(v.id for v in (first, again, signed, vip) if v.id)
    # Pushing the same readings again changes nothing on the server.
    gate.stop()
    gate.store.conn.execute("UPDATE readings SET state = 'pending'")
    assert gate.sync_now()
    states = {r["state"] for r in gate.store.query("SELECT state FROM readings")}
    assert states == {"duplicate"}
    assert len(door.server_scans()) == 4
    assert wait_for(lambda: gate.status().online)


def test_another_gates_scan_reaches_this_gate(door: Door, make_gate: Callable[..., Gate]) -> None:
    one, two = make_gate("one"), make_gate("two", checkpoint="gate_b")
    assert one.sync_now() and two.sync_now()
    ana = door.people[0]
    assert two.submit(ana["qr"]).accepted
    assert two.sync_now() and one.sync_now()
    denied = one.submit(ana["qr"])
    assert (denied.status, denied.reason, denied.inside_via) == (
        "denied",
        "already_inside",
        "Gate B",
    )
    assert one.attendee(ana["id"]).inside  # type: ignore[union-attr]


def test_reading_stays_counted_until_a_pull_reflects_it(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    gate = make_gate()
    assert gate.sync_now()
    ana = door.people[0]
    assert gate.submit(ana["qr"]).accepted
    assert gate.stats().occupancy == 1
    client = gate._get_client()
    assert client is not None and gate.syncer.push_once(client) == 1
    # Acknowledged but not pulled yet: still counted once, not zero and not twice.
    assert gate.stats().occupancy == 1
    assert gate.sync_now()
    assert gate.stats().occupancy == 1
    row = gate.store.one("SELECT reflected FROM readings")
    assert row is not None and row[0] == 1


def test_must_refetch_downloads_again_and_keeps_the_outbox(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    gate = make_gate()
    assert gate.sync_now()
    door.api.live.stop()
    gate.sync_now(timeout=1)
    verdict = gate.submit(door.people[0]["qr"])
    gate.store.conn.execute("UPDATE events SET cursor = '999999999'")
    door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))
    door.org.client.delete(f"/v1/events/{door.event_id}/attendees/{door.people[2]['id']}")
    assert gate.sync_now()
    assert gate.store.get_meta(f"refetch:{door.event_id}") is not None
    assert gate.status().attendees_cached == 2
    assert [s["id"] for s in door.server_scans()] == [verdict.id]


def _gate_email(door: Door) -> None:
    """Turn on the event's search by email: gates receive attendees' emails from now on."""
    answer = door.org.client.patch(f"/v1/events/{door.event_id}", json={"gate_email": True})
    assert answer.status_code == 200, answer.text


def test_search_by_name_email_and_code(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.sync_now()
    assert [a.last_name for a in gate.search("nun")] == ["Núñez"]
    assert [a.first_name for a in gate.search("ANA r")] == ["Ana"]
    assert gate.search("cy@exa") == []  # minimal cache: no emails on the gate by default
    assert gate.attendee(door.people[2]["id"]).email is None  # type: ignore[union-attr]
    _gate_email(door)
    assert gate.sync_now()
    assert [a.first_name for a in gate.search("cy@exa")] == ["Cy"]
    assert [a.first_name for a in gate.search("CY-1")] == ["Cy"]
    assert gate.search("ana zz") == [] and gate.search("   ") == []
    assert gate.search("%") == [] and gate.search("' OR 1=1 --") == []


def test_manual_check_in_and_out(door: Door, make_gate: Callable[..., Gate]) -> None:
    clock = Clock()
    gate = make_gate(clock=clock)
    assert gate.sync_now()
    bo = door.people[1]
    inside = gate.check_in_attendee(bo["id"])
    assert inside.accepted and inside.manual and inside.attendee.is_vip  # type: ignore[union-attr]
    clock.advance(5)
    out = gate.check_in_attendee(bo["id"], "out")
    assert out.accepted and out.direction == "out" and out.warnings == ()
    assert gate.stats().exits_today == 1
    assert gate.check_in_attendee("att_nobody").reason == "unknown_code"
    assert gate.sync_now()
    scans = {s["id"]: s for s in door.server_scans()}
    assert scans[inside.id]["direction"] == "in" and scans[out.id]["direction"] == "out"


def test_walk_in_registers_and_admits_offline(door: Door, make_gate: Callable[..., Gate]) -> None:
    _gate_email(door)  # a taken email is seen at the door only when the gate has the emails
    gate = make_gate()
    assert gate.sync_now()
    door.api.live.stop()
    gate.sync_now(timeout=1)
    with pytest.raises(WalkinInvalid) as bad:
        gate.register_walkin("", "Lee", "not-an-email", "nope", ["x" * 65])
    assert set(bad.value.errors) == {"first_name", "email", "ticket_type", "tags"}
    with pytest.raises(WalkinInvalid) as taken:
        gate.register_walkin("Ann", "Other", "ANA@example.com", "general")
    assert "already registered" in taken.value.errors["email"]
    verdict = gate.register_walkin("Eve", "Walker", "eve@example.com", "vip", ["press"])
    assert verdict.accepted and verdict.manual and verdict.offline
    assert verdict.attendee is not None and verdict.attendee.is_vip
    assert [a.first_name for a in gate.search("eve")] == ["Eve"]
    kinds = sorted(item.kind for item in gate.outbox())
    assert kinds == ["registration", "scan"]
    door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))
    assert gate.sync_now()
    person = door.org.client.get(
        f"/v1/events/{door.event_id}/attendees/{verdict.attendee.id}"
    ).json()
    assert person["email"] == "eve@example.com" and person["tags"] == ["press"]
    assert [s["id"] for s in door.server_scans()] == [verdict.id]
    assert gate.store.one("SELECT walk_in FROM attendees WHERE id = ?", (person["id"],))[0] == 0


HOSTILE: list[str | bytes] = [
    b"\x00\xff\xfe\x80binary",
    "A" * 10_000,
    "abc\x07\x1b[31mred",
    "",
    "   \t ",
    "\ud800lone",
    "DC1" + "A" * 70,
    "DC1" + "!" * 40,
    "dc1 ' OR 1=1; DROP TABLE attendees; --",
    "../../etc/passwd",
]


def test_hostile_codes_are_denied_never_crash(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.sync_now()
    forged = door.people[0]["qr"]
    forged = forged[:-5] + ("A" if forged[-5] != "A" else "B") + forged[-4:]
    verdicts = [gate.submit(code, source="keyboard") for code in [*HOSTILE, forged]]
    assert all(v.status == "denied" for v in verdicts)
    reasons = {v.reason for v in verdicts}
    assert reasons <= {"malformed_code", "invalid_signature", "unknown_code"}
    assert verdicts[-1].reason == "invalid_signature"
    assert verdicts[0].reason == verdicts[1].reason == verdicts[2].reason == "malformed_code"
    assert gate.sync_now()
    states = [r["state"] for r in gate.store.query("SELECT state FROM readings")]
    assert states == ["applied"] * len(verdicts)
    assert all(s["status"] == "denied" for s in door.server_scans())
    assert gate.status().attendees_cached == 3  # the cache is intact


def test_revoked_device_erases_itself_and_stops(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    assert gate.sync_now()
    gate.submit("unknown-thing")
    door.api.live.stop()
    gate.submit(door.people[0]["qr"])  # queued offline, never uploaded
    door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))
    device = gate.device_id
    assert door.org.client.delete(f"/v1/devices/{device}").status_code == 204
    assert not gate.sync_now()
    status = gate.status()
    assert status.revoked and not status.paired and status.attendees_cached == 0
    assert status.wiped == "revoked" and status.pending == 0
    assert gate.keys.notice is not None and gate.keys.notice.pending == 2  # never uploaded
    with pytest.raises(GateError):
        gate.submit(door.people[0]["qr"])
    assert gate.search("ana") == [] and gate.recent() == []


def test_pairing_errors_are_clear(door: Door, tmp_path: Path) -> None:
    gate = Gate(tmp_path / "fresh")
    try:
        with pytest.raises(PairingError, match="unknown, used or expired"):
            gate.pair(door.url, "AAAA-BBBB-CCCC-DDDD")
        with pytest.raises(PairingError, match="http"):
            gate.pair("ftp://x", "AAAA")
        with pytest.raises(PairingError, match="cannot reach"):
            gate.pair("http://127.0.0.1:9", "AAAA-BBBB")
        with pytest.raises(PairingError, match="not a doorcheck pairing"):
            gate.pair_uri("https://example.com/?code=1")
        enrolment = door.enrolment("by-uri")
        gate.pair_uri(
            enrolment["pairing_uri"].replace(
                enrolment["pairing_uri"].split("server=")[1].split("&")[0], door.url
            )
        )
        assert gate.paired and gate.events()[0].id == door.event_id
        with pytest.raises(GateError):
            gate.submit("x")  # not configured yet
    finally:
        gate.close()


def test_admin_sees_and_resolves_a_double_admission(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    one, two = make_gate("one"), make_gate("two", checkpoint="gate_b")
    assert one.sync_now() and two.sync_now()
    port = int(door.url.rsplit(":", 1)[1])
    door.api.live.stop()
    one.sync_now(timeout=1)
    two.sync_now(timeout=1)
    ana = door.people[0]
    assert one.submit(ana["qr"]).accepted and two.submit(ana["qr"]).accepted  # both offline
    door.api.live = serve(door.api.app, port)
    assert one.sync_now() and two.sync_now()
    with pytest.raises(AdminError, match="not an admin"):
        AdminClient(door.url, "dk_live_nope").conflicts(door.event_id)
    admin = AdminClient(door.url, door.org.admin_key)
    try:
        (conflict,) = admin.conflicts(door.event_id)
        assert conflict["kind"] == "already_inside"
        assert admin.conflict(conflict["id"])["id"] == conflict["id"]
        resolved = admin.resolve(conflict["id"], "void_scan", "same person, re-scanned")
        assert resolved["status"] == "resolved"
        with pytest.raises(AdminError, match="resolved"):
            admin.resolve(conflict["id"], "accept")
        assert admin.conflicts(door.event_id) == []
    finally:
        admin.close()
    assert one.sync_now()
    assert one.stats().occupancy == 1


def test_sync_now_while_the_loops_run(door: Door, make_gate: Callable[..., Gate]) -> None:
    gate = make_gate()
    gate.start()
    assert wait_for(lambda: gate.status().attendees_cached == 3)
    verdict = gate.submit(door.people[0]["qr"])
    late = add_attendee(door.org, door.event_id, first_name="Late", last_name="Comer")
    assert gate.sync_now(timeout=20)  # uploads through the loop, pulls at once
    assert gate.attendee(late["id"]) is not None
    assert [s["id"] for s in door.server_scans()] == [verdict.id]
    gate.stop()


def test_a_long_poll_carrying_the_gates_own_upload_never_counts_it_twice(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    """The pull is long-polling when the gate's reading is uploaded, and it comes back with that
    reading in it: the zone must count it once at every moment, not twice until the next pull
    (the "6 / 5 after five admits" of the status bar)."""
    import threading

    gate = make_gate()
    assert gate.sync_now()
    assert gate.submit(door.people[0]["qr"]).accepted
    client = gate._get_client()
    assert client is not None
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(gate.stats().occupancy)

    def long_poll() -> None:
        gate.syncer.puller.pull_once(client, door.event_id, wait=10)

    puller = threading.Thread(target=long_poll)
    watcher = threading.Thread(target=watch)
    puller.start()
    time.sleep(0.5)  # the pull is waiting on the server now
    watcher.start()
    assert gate.syncer.push_once(client) == 1
    puller.join(20)
    time.sleep(0.2)
    done.set()
    watcher.join()
    assert seen and set(seen) == {1}, sorted(set(seen))
    row = gate.store.one("SELECT reflected FROM readings")
    assert row is not None and row[0] == 1


def test_back_online_soon_after_the_server_answers_again(
    door: Door, make_gate: Callable[..., Gate]
) -> None:
    """A long outage must not leave the gate waiting out a long backoff once the server is back
    (SPEC section 11: within 2 s). Before, eight failures meant waits of up to 45 s."""
    from scanner_app.sync_state import BACKOFF_MAX_S, PROBE_MAX_S

    gate = make_gate()
    assert gate.sync_now()
    gate.start()
    port = int(door.url.rsplit(":", 1)[1])
    door.api.live.stop()
    assert wait_for(lambda: not gate.status().online, 30)
    # long enough for an exponential backoff to have reached many seconds
    assert wait_for(lambda: gate.syncer.health.state.failures >= 8, 60)
    door.api.live = serve(door.api.app, port)
    back = time.monotonic()
    assert wait_for(lambda: gate.status().online, 30)
    took = time.monotonic() - back
    # the bound is generous for a loaded machine; the old backoff alone would be 15-45 s
    assert took < PROBE_MAX_S * 1.5 + 3.0 < BACKOFF_MAX_S / 2, took
