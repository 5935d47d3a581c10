"""Secrets at rest (SPEC section 10; issue 17 finding 6): webhook signing secrets are stored
sealed under the server secret, old rows are sealed at the next start, and a gate's folder and
files are its owner's alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text, update

from scanner_app.store import Store
from scanner_app.store.cipher import Cipher
from sync_server.migrate import seal_webhook_secrets, upgrade
from sync_server.models import WebhookEndpoint
from sync_server.security import SecretBox
from tests.server.conftest import Api, Org


def _stored(api: Api, endpoint_id: str) -> tuple[str, str | None]:
    with api.app.state.engine.connect() as conn:
        row = conn.execute(
            text("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint_id},
        ).one()
    return row[0], row[1]


def test_webhook_secrets_are_stored_sealed(api: Api, org: Org) -> None:
    created = org.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["checkin.accepted"]}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret, previous = _stored(api, body["id"])
    assert secret.startswith("s1.") and body["secret"] not in secret and previous is None
    box = SecretBox(api.app.state.secret)
    assert box.open(secret) == body["secret"]
    rotated = org.client.post(f"/v1/webhooks/{body['id']}/rotate-secret").json()
    secret, previous = _stored(api, body["id"])
    assert box.open(secret) == rotated["secret"] and box.open(previous or "") == body["secret"]
    assert rotated["secret"] not in secret and body["secret"] not in (previous or "")


def test_secrets_written_in_the_clear_are_sealed_at_the_next_start(api: Api, org: Org) -> None:
    created = org.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["checkin.accepted"]}
    ).json()
    engine = api.app.state.engine
    with engine.begin() as conn:  # as a server before this change wrote it
        table = WebhookEndpoint.__table__
        conn.execute(
            update(table).where(table.c.id == created["id"]).values(secret=created["secret"])
        )
    assert _stored(api, created["id"])[0] == created["secret"]
    upgrade(engine, secret=api.app.state.secret)
    secret, _ = _stored(api, created["id"])
    assert (
        secret.startswith("s1.")
        and SecretBox(api.app.state.secret).open(secret) == (created["secret"])
    )
    assert seal_webhook_secrets(engine, SecretBox(api.app.state.secret)) == 0  # idempotent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_gates_folder_and_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "gate"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # as an older version left it
    (folder / "scanner.db").touch()
    os.chmod(folder / "scanner.db", 0o644)
    store = Store(folder / "scanner.db", Cipher(os.urandom(32)))
    try:
        store.set_secret("device_token", "dk_dev_" + "x" * 43)  # a write: the WAL exists now
        assert _mode(folder) == 0o700
        files = [p for p in folder.iterdir() if p.name.startswith("scanner.db")]
        assert {p.name for p in files} >= {"scanner.db", "scanner.db-wal", "scanner.db-shm"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()
