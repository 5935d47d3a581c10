"""A gate file written before sealing (schema 2: names, emails, codes and the token in clear) is
sealed at the first start of this version without losing its queue: what was pending uploads
afterwards, and nothing personal is left in the folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from scanner_app.gate import STORE_FILE, Gate
from scanner_app.store.readings import pending_readings, pending_registrations
from tests.scanner.conftest import Clock, Door
from tests.scanner.test_lost_gate import _leaks
from tests.server.conftest import serve

LEGACY_SCHEMA = Path(__file__).with_name("data") / "gate_schema_v2.sql"


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    keys = [k for k in row if k in columns]
    conn.execute(
        f"INSERT INTO {table}({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
        [row[k] for k in keys],
    )


def _legacy_copy(gate: Gate, target: Path) -> dict[str, str]:
    """What the previous version would have written for this gate's state, in clear."""
    store = gate.store
    secrets = {key: store.get_secret(key) or "" for key in ("device_token", "config")}
    plain_meta = [dict(r) for r in store.query("SELECT * FROM meta")]
    tables = {
        t: [dict(r) for r in store.query(f"SELECT * FROM {t}")]
        for t in ("events", "ticket_types", "zones", "checkpoints")
    }
    readings, registrations = pending_readings(store, 100), pending_registrations(store, 100)
    target.mkdir()
    conn = sqlite3.connect(target / STORE_FILE)
    conn.executescript(LEGACY_SCHEMA.read_text())
    for row in plain_meta:
        if row["key"] not in ("key_check",):
            value = secrets.get(row["key"], row["value"])
            _insert(conn, "meta", {"key": row["key"], "value": value})
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    for table, rows in tables.items():
        for row in rows:
            _insert(conn, table, row)
    for row in readings:
        _insert(conn, "readings", row)
    for row in registrations:
        _insert(conn, "registrations", row)
    conn.commit()
    conn.close()
    return secrets


def test_a_plaintext_gate_file_is_sealed_and_its_queue_uploaded(door: Door, tmp_path: Path) -> None:
    clock = Clock()
    gate = Gate(tmp_path / "current", clock=clock)
    gate.pair(door.url, door.enrolment("Old gate")["enrollment_code"], "Old gate")
    gate.configure(door.event_id, door.event["gate_a"]["id"], "in", "Opal Operator")
    assert gate.sync_now()
    door.api.live.stop()
    assert gate.submit(door.people[0]["qr"]).accepted
    gate.register_walkin("Quentinette", "Oldfile", "quentinette@legacy.example", "general")
    assert gate.status().pending == 3
    legacy = tmp_path / "legacy"
    secrets = _legacy_copy(gate, legacy)
    gate.close()
    needles = [
        "Quentinette",
        "Oldfile",
        "quentinette@legacy.example",
        "Opal Operator",
        "Ruiz",
        door.people[0]["qr"],
        secrets["device_token"],
    ]
    assert _leaks(legacy, needles)  # the old file has them all in clear

    upgraded = Gate(legacy, clock=clock)
    try:
        assert _leaks(legacy, needles) == []
        assert sorted(p.name for p in legacy.iterdir() if "sealing" in p.name) == []
        assert upgraded.status().pending == 3 and upgraded.paired
        assert upgraded.config is not None and upgraded.config.operator == "Opal Operator"
        outbox = upgraded.outbox()
        assert {item.summary for item in outbox} >= {"Quentinette Oldfile", "Ana Ruiz"}
        door.api.live = serve(door.api.app, int(door.url.rsplit(":", 1)[1]))
        assert upgraded.sync_now()
        scans = door.server_scans()
        assert len(scans) == 2 and {s["operator"] for s in scans} == {"Opal Operator"}
        found = door.org.client.get(
            f"/v1/events/{door.event_id}/attendees", params={"q": "quentinette"}
        ).json()["data"]
        assert [a["last_name"] for a in found] == ["Oldfile"]
        assert upgraded.status().attendees_cached >= 4  # pulled again whole
        assert [a.last_name for a in upgraded.search("quent")] == ["Oldfile"]
    finally:
        upgraded.close()
