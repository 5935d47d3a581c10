"""The checkpoint a gate is configured on, read from the cache once per configuration: its rules,
its event's ticket types and zone, the names of its event's checkpoints and the ticket keys of
every cached event (a ticket of another event resolves, to `wrong_event`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import msgspec

from scanner_app.errors import GateError, Problem
from scanner_app.state import GateConfig
from scanner_app.store import Store
from scanner_app.store.events import (
    checkpoint_row,
    checkpoints_of,
    public_keys,
    ticket_types_of,
    zone_row,
)
from shared.policy import CheckpointPolicy
from shared.resolution import EventKey
from shared.sync import CheckpointRow
from shared.tickets import event_digest, public_key_from_b64

__all__ = ["GateContext", "load_context"]

_CHECKPOINT = msgspec.json.Decoder(CheckpointRow)


@dataclass(frozen=True, slots=True)
class GateContext:
    version: int
    event_id: str
    policy: CheckpointPolicy
    checkpoint_name: str
    checkpoint_names: dict[str, str]
    ticket_types: dict[str, sqlite3.Row]  # slug -> row
    types_by_number: dict[int, sqlite3.Row]
    zone: sqlite3.Row | None
    keys: dict[bytes, EventKey]  # a ticket's event digest -> its event's key


def checkpoint_of(data: str) -> CheckpointRow:
    """A cached checkpoint (stored as its wire form)."""
    return _CHECKPOINT.decode(data)


def load_context(store: Store, config: GateConfig) -> GateContext:
    cp = checkpoint_row(store, config.checkpoint_id)
    if cp is None:
        raise GateError(
            Problem.UNKNOWN_CHECKPOINT, "the configured checkpoint is no longer in the cache"
        )
    policy = checkpoint_of(cp["data"]).to_policy()
    types = ticket_types_of(store, config.event_id)
    keys = {
        event_digest(event_id): EventKey(event_id, public_key_from_b64(key))
        for event_id, key in public_keys(store)
    }
    return GateContext(
        version=store.config_version,
        event_id=config.event_id,
        policy=policy,
        checkpoint_name=cp["name"],
        checkpoint_names={r["id"]: r["name"] for r in checkpoints_of(store, config.event_id)},
        ticket_types={t["slug"]: t for t in types},
        types_by_number={t["number"]: t for t in types},
        zone=zone_row(store, policy.zone_id) if policy.zone_id else None,
        keys=keys,
    )
