"""The checkpoint a gate is configured on, read from the cache once per configuration: its rules,
its event's ticket types and zone, the names of its event's checkpoints and the ticket keys of
every cached event (a ticket of another event resolves, to `wrong_event`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import msgspec

from scanner_app.errors import GateError, Problem
from scanner_app.state import CheckpointChoice, EventChoice, GateConfig
from scanner_app.store import Store
from scanner_app.store.events import (
    checkpoint_row,
    checkpoints_of,
    event_rows,
    public_keys,
    ticket_types_of,
    zone_row,
)
from shared.policy import CheckpointPolicy, effective_direction
from shared.resolution import EventKey
from shared.rules import CheckpointDirection, Direction
from shared.sync import CheckpointRow
from shared.tickets import event_digest, public_key_from_b64

__all__ = [
    "GateContext",
    "checkpoint_of",
    "event_choices",
    "gate_config",
    "load_config",
    "load_context",
    "save_config",
]

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
    checkpoints: tuple[CheckpointPolicy, ...] = ()  # the event's (where else a ticket goes)


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
    event_checkpoints = checkpoints_of(store, config.event_id)
    keys = {
        event_digest(event_id): EventKey(event_id, public_key_from_b64(key))
        for event_id, key in public_keys(store)
    }
    return GateContext(
        version=store.config_version,
        event_id=config.event_id,
        policy=policy,
        checkpoint_name=cp["name"],
        checkpoint_names={r["id"]: r["name"] for r in event_checkpoints},
        ticket_types={t["slug"]: t for t in types},
        types_by_number={t["number"]: t for t in types},
        zone=zone_row(store, policy.zone_id) if policy.zone_id else None,
        keys=keys,
        checkpoints=tuple(checkpoint_of(r["data"]).to_policy() for r in event_checkpoints),
    )


def event_choices(store: Store) -> list[EventChoice]:
    """The cached events with their checkpoints and ticket types, to choose a gate from."""
    out = []
    for event in event_rows(store):
        choices = []
        for cp in checkpoints_of(store, event["id"]):
            row = checkpoint_of(cp["data"])
            direction = row.direction.value
            choices.append(
                CheckpointChoice(cp["id"], cp["name"], direction, row.zone_id, row.active)
            )
        types = ticket_types_of(store, event["id"])
        out.append(
            EventChoice(
                event["id"],
                event["name"],
                tuple(choices),
                tuple((t["slug"], t["name"]) for t in types),
                str(json.loads(event["data"] or "{}").get("timezone") or "UTC"),
            )
        )
    return out


def gate_config(
    store: Store, event_id: str, checkpoint_id: str, direction: str, operator: str
) -> GateConfig:
    """A gate on a cached checkpoint; a fixed checkpoint's own direction wins."""
    row = checkpoint_row(store, checkpoint_id, event_id)
    if row is None:
        raise GateError(
            Problem.UNKNOWN_CHECKPOINT, "unknown event or checkpoint: sync the event list first"
        )
    fixed = CheckpointDirection(checkpoint_of(row["data"]).direction)
    asked = Direction(direction) if direction in ("in", "out") else Direction.IN
    wanted = effective_direction(fixed, asked, strict=False)
    return GateConfig(event_id, checkpoint_id, wanted.value, operator.strip()[:200])  # type: ignore[arg-type]


def load_config(store: Store) -> GateConfig | None:
    """The gate's chosen event, checkpoint, direction and operator (sealed: it names staff)."""
    raw = store.get_secret("config")
    return None if raw is None else GateConfig(**json.loads(raw))


def save_config(store: Store, config: GateConfig) -> None:
    chosen = {
        "event_id": config.event_id,
        "checkpoint_id": config.checkpoint_id,
        "direction": config.direction,
        "operator": config.operator,
    }
    store.set_secret("config", json.dumps(chosen))
