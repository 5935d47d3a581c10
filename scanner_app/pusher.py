"""Uploading the outbox: the oldest pending registrations and readings as one `shared.sync`
push, then each item's answer recorded. An item leaves the outbox only when the server answered
it (`applied`, `duplicate` or `rejected`); a refused or failed batch is counted on its items.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scanner_app.client import ServerClient, ServerRefused, SyncError
from scanner_app.store import Store, parse_iso
from scanner_app.store.cache import reflect_settled
from scanner_app.store.readings import note_attempt, pending_batch, settle
from scanner_app.sync_state import Health
from shared.sync import DeviceVerdict, PushRequest, RegistrationItem, ScanItem

__all__ = ["BATCH", "Pusher"]

BATCH = 1000


def scan_item(row: Any) -> ScanItem:
    return ScanItem(
        id=row["id"],
        event_id=row["event_id"],
        checkpoint_id=row["checkpoint_id"],
        code=row["code"],
        direction=row["direction"],
        scanned_at=parse_iso(row["scanned_at"]),
        hlc=row["hlc"],
        device_verdict=DeviceVerdict(status=row["status"], reason=row["reason"]),
        operator=row["operator"] or None,
        manual=bool(row["manual"]),
        **_override(row.get("override")),
    )


def _override(sealed: list[str | None] | None) -> dict[str, Any]:
    """A reading's supervisor override on the wire (`shared.sync.ScanItem`), if it is one."""
    if not sealed:
        return {}
    reason, note, lifted = (list(sealed) + [None] * 3)[:3]
    return {
        "override": True,
        "override_reason": reason,
        "override_note": note,
        "overridden_reason": lifted,
    }


def registration_item(row: Any) -> RegistrationItem:
    return RegistrationItem(
        id=row["id"],
        event_id=row["event_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        ticket_type=row["ticket_type"],
        tags=json.loads(row["tags"]),
        created_at=parse_iso(row["created_at"]),
        hlc=row["hlc"],
    )


class Pusher:
    def __init__(self, store: Store, health: Health, on_change: Callable[[], None]) -> None:
        self.store, self.health, self.on_change = store, health, on_change
        self.lock = threading.Lock()
        self.batch = BATCH

    def push_once(self, client: ServerClient) -> int:
        """Send one batch of the outbox; returns how many items the server settled."""
        with self.lock:
            regs, scans = pending_batch(self.store, self.batch)
            if not regs and not scans:
                return 0
            sent_at = time.time()
            request = PushRequest(
                device_time=datetime.now(UTC),
                scans=[scan_item(r) for r in scans],
                registrations=[registration_item(r) for r in regs],
            )
            try:
                answer = client.push(request)
            except SyncError as exc:
                if isinstance(exc, ServerRefused) and exc.status == 413 and self.batch > 10:
                    self.batch //= 2
                item_ids = [r["id"] for r in (*regs, *scans)]
                note_attempt(self.store, item_ids, str(exc), exc.code.value)
                raise
            with self.store.transaction() as conn:
                settled, unsequenced = settle(conn, answer.results)
                if unsequenced:
                    reflect_settled(conn, unsequenced)
            if settled:
                self.on_change()
            self.health.ok(answer.server_time, sent_at=sent_at)
            return settled
