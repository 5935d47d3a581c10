"""The gate's tables, declared with SQLModel in a registry of their own (their names never meet
the server's). The store creates them; every statement that reads or writes them lives in
`scanner_app.store` and its modules.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "CachedAttendee",
    "CachedCheckpoint",
    "CachedEvent",
    "CachedTicketType",
    "CachedZone",
    "LocalReading",
    "LocalRegistration",
    "Meta",
    "ZoneDelta",
    "metadata",
]


def _d(value: Any) -> Any:
    """A column default that plain SQL inserts get too (a server default)."""
    text = str(int(value)) if isinstance(value, bool | int) else value
    return Field(default=value, sa_column_kwargs={"server_default": text})


class _Local(SQLModel, registry=registry()):
    """The scanner's own registry: its table names never meet the server's."""


class Meta(_Local, table=True):
    """Settings and credentials; a credential's value is sealed (`Store.set_secret`)."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class CachedEvent(_Local, table=True):
    __tablename__ = "events"
    id: str = Field(primary_key=True)
    name: str
    data: str = _d("{}")  # the EventRow as JSON
    public_key: str | None = None
    cursor: str | None = None  # the pull cursor (server change sequence)
    snapshot_gen: int = _d(0)  # bumped by each full snapshot; rows left behind are stale
    synced_at: str | None = None


class CachedTicketType(_Local, table=True):
    __tablename__ = "ticket_types"
    id: str = Field(primary_key=True)
    event_id: str = Field(index=True)
    slug: str
    name: str
    number: int
    is_vip: bool = _d(False)
    valid_from: str | None = None
    valid_until: str | None = None


class CachedZone(_Local, table=True):
    __tablename__ = "zones"
    id: str = Field(primary_key=True)
    event_id: str = Field(index=True)
    name: str
    capacity: int | None = None
    occupancy: int = _d(0)  # as of the last pull


class CachedCheckpoint(_Local, table=True):
    __tablename__ = "checkpoints"
    id: str = Field(primary_key=True)
    event_id: str = Field(index=True)
    name: str
    data: str  # the CheckpointRow as JSON


class CachedAttendee(_Local, table=True):
    """An attendee as the door needs it. `sealed` holds the personal fields (code, qr, names,
    email, tags) under the gate's data key; `code_tag` is the custom code's blind index
    (`scanner_app.store.cipher`). Names are searched in memory (`scanner_app.store.names`)."""

    __tablename__ = "attendees"
    __table_args__ = (Index("ix_att_code", "code_tag"),)
    id: str = Field(primary_key=True)
    event_id: str
    sealed: bytes
    code_tag: bytes | None = None
    status: str = _d("valid")
    ticket_type: str
    valid_from: str | None = None
    valid_until: str | None = None
    state: str = _d("{}")  # {"zones": {...}, "checkpoint_entries": {...}} as the server knew it
    walk_in: bool = _d(False)  # registered at this door; not yet confirmed by a pull
    gen: int = _d(0)


class ZoneDelta(_Local, table=True):
    """What this device's unreflected readings add to a zone's pulled occupancy."""

    __tablename__ = "zone_deltas"
    zone_id: str = Field(primary_key=True)
    delta: int = _d(0)


class LocalReading(_Local, table=True):
    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_read_att", "attendee_id", "reflected"),
        Index("ix_read_state", "state", "seq"),
        Index("ix_read_unreflected", "reflected", "zone_key"),
    )
    seq: int | None = Field(default=None, primary_key=True)  # local order
    id: str = Field(unique=True)  # the client UUID (idempotency key)
    event_id: str
    checkpoint_id: str
    attendee_id: str | None = None
    direction: str
    status: str
    reason: str
    warnings: str = _d("[]")
    scanned_at: str
    hlc: str
    sealed: bytes  # [code, operator, summary] under the data key (summary: the attendee as shown)
    manual: bool = _d(False)
    source: str = _d("camera")
    zone_key: str | None = None
    occupancy_delta: int = _d(0)
    offline: bool = _d(True)
    inside_since: str | None = None
    inside_via: str | None = None
    state: str = _d("pending")  # pending | applied | duplicate | rejected
    reflected: bool = _d(False)
    acked_seq: int | None = None  # the event's change sequence that reflects it (server's)
    attempts: int = _d(0)
    last_error: str | None = None
    last_problem: str | None = None  # scanner_app.errors.Problem of the last failed upload
    server_status: str | None = None
    server_reason: str | None = None
    conflict_id: str | None = None


class LocalRegistration(_Local, table=True):
    __tablename__ = "registrations"
    __table_args__ = (Index("ix_reg_state", "state", "seq"),)
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    event_id: str
    attendee_id: str
    sealed: bytes  # [first_name, last_name, email, tags] under the data key
    ticket_type: str
    created_at: str
    hlc: str
    state: str = _d("pending")
    attempts: int = _d(0)
    last_error: str | None = None
    last_problem: str | None = None
    conflict_id: str | None = None


metadata = _Local.metadata
