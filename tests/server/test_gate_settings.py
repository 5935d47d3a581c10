"""What a lost gate may expose, set per event (SQLite and PostgreSQL): `device_data_ttl_hours`,
`require_device_pin` and `gate_email` are validated strictly, shown, carried by `/v1/sync/events`
and every pull page, reach a long-polling gate at once, and `gate_email` decides whether a gate
receives attendees' emails at all (a change re-sends every attendee). Migration 0007 gives
existing rows the defaults."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import bindparam, text

from shared.sync import MAX_DEVICE_DATA_TTL_HOURS
from sync_server.db import UTCDateTime, make_engine
from sync_server.migrate import alembic_config, upgrade
from tests.server.conftest import Api, Org, add_attendee, assert_error, setup_event
from tests.server.test_sync import Gate

SETTINGS = ("device_data_ttl_hours", "require_device_pin", "gate_email")


def settings_of(body: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(body[name] for name in SETTINGS)


def test_existing_rows_get_the_defaults(db_url: str) -> None:
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    stamp = bindparam("t", now, type_=UTCDateTime())
    try:
        upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'A', :t)"
                ).bindparams(stamp)
            )
            conn.execute(
                text(
                    "INSERT INTO events (id, organization_id, name, slug, timezone, status,"
                    " ticket_public_key, ticket_private_key_enc, key_digest, change_seq,"
                    " next_ticket_type_number, tombstone_floor, created_at, updated_at) VALUES"
                    " ('evt_a', 'org_a', 'Old', 'old', 'UTC', 'published', 'k', 'e', 'd', 3, 1,"
                    " 0, :t, :t)"
                ).bindparams(stamp)
            )
            conn.execute(
                text(
                    "INSERT INTO devices (id, organization_id, name, created_at, last_seen_at)"
                    " VALUES ('dev_a', 'org_a', 'Old gate', :t, :t)"
                ).bindparams(stamp)
            )
        upgrade(engine)
        with engine.connect() as conn:
            event = conn.execute(text("SELECT * FROM events")).mappings().one()
            device = conn.execute(text("SELECT * FROM devices")).mappings().one()
        assert event["device_data_ttl_hours"] == 48
        assert event["require_device_pin"] in (False, 0) and event["gate_email"] in (False, 0)
        assert event["change_seq"] == 3
        for name in (
            "wipe_requested_at",
            "wipe_confirmed_at",
            "wipe_reason",
            "pending_uploads",
            "pending_reported_at",
        ):
            assert device[name] is None, name
        assert device["last_seen_at"] is not None
        with engine.begin() as conn:  # and back down, keeping the rows
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0006")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM devices")).scalar_one() == "Old gate"
            columns = list(conn.execute(text("SELECT * FROM events")).keys())
            assert "gate_email" not in columns and "slug" in columns
        upgrade(engine)
    finally:
        engine.dispose()


def test_the_settings_are_strict_and_shown(api: Api, org: Org) -> None:
    c = org.client
    plain = c.post("/v1/events", json={"name": "Plain", "slug": "plain"})
    assert plain.status_code == 201 and settings_of(plain.json()) == (48, False, False)
    body = {"name": "Careful", "slug": "careful", "device_data_ttl_hours": 12}
    careful = c.post("/v1/events", json={**body, "require_device_pin": True, "gate_email": True})
    assert careful.status_code == 201, careful.text
    eid = careful.json()["id"]
    assert settings_of(c.get(f"/v1/events/{eid}").json()) == (12, True, True)
    longest = c.patch(
        f"/v1/events/{eid}", json={"device_data_ttl_hours": MAX_DEVICE_DATA_TTL_HOURS}
    )
    assert longest.status_code == 200
    assert settings_of(longest.json()) == (MAX_DEVICE_DATA_TTL_HOURS, True, True)
    shortest = c.patch(f"/v1/events/{eid}", json={"device_data_ttl_hours": 1, "gate_email": False})
    assert settings_of(shortest.json()) == (1, True, False)
    listed = {e["id"]: e for e in c.get("/v1/events").json()["data"]}
    assert settings_of(listed[eid]) == (1, True, False)

    bad: list[tuple[str, Any]] = [
        ("device_data_ttl_hours", 0),
        ("device_data_ttl_hours", -5),
        ("device_data_ttl_hours", MAX_DEVICE_DATA_TTL_HOURS + 1),
        ("device_data_ttl_hours", 10**30),
        ("device_data_ttl_hours", True),
        ("device_data_ttl_hours", "48"),
        ("device_data_ttl_hours", 48.0),
        ("device_data_ttl_hours", [48]),
        ("require_device_pin", 1),
        ("require_device_pin", "true"),
        ("require_device_pin", "yes"),
        ("gate_email", 0),
        ("gate_email", "false"),
        ("gate_email", {}),
    ]
    for field, value in bad:
        created = c.post("/v1/events", json={"name": "X", "slug": "x-bad", field: value})
        error = assert_error(created, 422, "validation_error")
        assert field in {d["field"] for d in error["details"]}, (field, value, error)
        patched = c.patch(f"/v1/events/{eid}", json={field: value})
        assert_error(patched, 422, "validation_error")
    for field in SETTINGS:  # a setting cannot be unset
        error = assert_error(
            c.patch(f"/v1/events/{eid}", json={field: None}), 422, "validation_error"
        )
        assert error["details"][0]["field"] == field
    assert settings_of(c.get(f"/v1/events/{eid}").json()) == (1, True, False)
    assert c.get("/v1/events", params={"limit": 100}).json()["data"][0]["slug"] != "x-bad"


def _rows(
    gate: Gate, event_id: str, cursor: str | None, limit: int = 1000
) -> tuple[list[Any], str]:
    rows, cursor, _ = gate.pull_all(event_id, cursor, limit)
    return rows, cursor


def test_gate_email_decides_what_a_gate_receives(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid = s["id"]
    people = [
        add_attendee(org, eid, first_name=f"P{i}", email=f"p{i}@example.com") for i in range(5)
    ]
    gate = Gate(api, org, "Gate A")
    rows, head = _rows(gate, eid, None)
    assert len(rows) == 5 and all("email" not in row for row in rows)
    assert all(row["first_name"] and row["ticket_type"] == "general" for row in rows)
    page = gate.client.get(f"/v1/sync/events/{eid}/pull").json()
    assert settings_of(page["event"]) == (48, False, False)
    synced = {e["id"]: e for e in gate.client.get("/v1/sync/events").json()["data"]}
    assert settings_of(synced[eid]) == (48, False, False)

    # Turned on: every attendee comes again, with their email, in pages, each exactly once.
    gone = people[4]["id"]
    assert org.client.delete(f"/v1/events/{eid}/attendees/{gone}").status_code == 204
    assert org.client.patch(f"/v1/events/{eid}", json={"gate_email": True}).status_code == 200
    rows, after_on = _rows(gate, eid, head, limit=2)
    alive = [row for row in rows if not row.get("deleted")]
    assert sorted(row["email"] for row in alive) == [f"p{i}@example.com" for i in range(4)]
    assert [row["id"] for row in rows if row.get("deleted")] == [gone]
    assert len({row["id"] for row in rows}) == len(rows) == 5
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs) and min(seqs) > int(head) and int(after_on) == max(seqs)
    assert all(row["email"] for row in _rows(gate, eid, None)[0])  # a first pull too
    assert _rows(gate, eid, after_on)[0] == []

    # Turned off: every attendee again, without it (a gate replaces its rows whole).
    assert org.client.patch(f"/v1/events/{eid}", json={"gate_email": False}).status_code == 200
    rows, after_off = _rows(gate, eid, after_on)
    assert len(rows) == 4 and all("email" not in row for row in rows)
    # Unchanged settings move nothing; another setting moves the head by one and re-sends none.
    assert org.client.patch(f"/v1/events/{eid}", json={"gate_email": False}).status_code == 200
    assert _rows(gate, eid, after_off) == ([], after_off)
    assert (
        org.client.patch(f"/v1/events/{eid}", json={"require_device_pin": True}).status_code == 200
    )
    rows, after_pin = _rows(gate, eid, after_off)
    assert rows == [] and int(after_pin) == int(after_off) + 1
    assert gate.client.get(f"/v1/sync/events/{eid}/pull").json()["event"]["require_device_pin"]

    # A reading still reaches the gate after the renumbering, by the same cursor.
    scanned = org.client.post(
        f"/v1/checkpoints/{s['gate_a']['id']}/scans", json={"code": people[0]["qr"]}
    )
    assert scanned.status_code == 200 and scanned.json()["verdict"]["status"] == "accepted"
    rows, _ = _rows(gate, eid, after_pin)
    assert [row["id"] for row in rows] == [people[0]["id"]] and rows[0]["zones"]


def test_an_online_scan_by_a_gate_shows_the_email_only_when_allowed(api: Api, org: Org) -> None:
    s = setup_event(org)
    ana = add_attendee(org, s["id"], email="ana@example.com")
    bo = add_attendee(org, s["id"], first_name="Bo", email="bo@example.com")
    gate = Gate(api, org, "Gate A")
    cp = s["gate_a"]["id"]

    def scan_by(client: Any, code: str) -> dict[str, Any]:
        response = client.post(f"/v1/checkpoints/{cp}/scans", json={"code": code})
        assert response.status_code == 200, response.text
        return dict(response.json()["attendee"])

    seen = scan_by(gate.client, ana["qr"])
    assert seen["email"] is None and seen["first_name"] == "Ana"
    assert scan_by(org.client, bo["qr"])["email"] == "bo@example.com"  # an API key sees it
    assert org.client.patch(f"/v1/events/{s['id']}", json={"gate_email": True}).status_code == 200
    assert scan_by(gate.client, bo["qr"])["email"] == "bo@example.com"


def test_a_long_polling_gate_hears_a_settings_change_at_once(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid = s["id"]
    add_attendee(org, eid)
    gate = Gate(api, org, "Gate A")
    _, head = _rows(gate, eid, None)
    answered: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = gate.client.get(
            f"/v1/sync/events/{eid}/pull", params={"cursor": head, "wait": 20}
        )
        answered.update(response.json(), took=time.monotonic() - started)

    waiting = threading.Thread(target=poll)
    waiting.start()
    time.sleep(0.6)
    patched = org.client.patch(f"/v1/events/{eid}", json={"device_data_ttl_hours": 6})
    assert patched.status_code == 200
    waiting.join(timeout=30)
    assert answered["took"] < 10, answered["took"]
    assert answered["event"]["device_data_ttl_hours"] == 6 and answered["attendees"] == []
    assert int(answered["cursor"]) == int(head) + 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_settings_change_that_fails_changes_nothing(api: Api, org: Org) -> None:
    s = setup_event(org)
    add_attendee(org, s["id"], email="a@example.com")
    org.client.post("/v1/events", json={"name": "Other", "slug": "taken"})
    gate = Gate(api, org, "Gate A")
    _, head = _rows(gate, s["id"], None)
    clash = org.client.patch(f"/v1/events/{s['id']}", json={"slug": "taken", "gate_email": True})
    assert_error(clash, 409, "conflict")
    assert _rows(gate, s["id"], head) == ([], head)
    assert org.client.get(f"/v1/events/{s['id']}").json()["gate_email"] is False
