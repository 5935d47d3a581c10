"""The gate's local store: one SQLite file (WAL) in the data folder.

It holds what a gate needs to decide alone: the cached events, ticket types, zones, checkpoints
and attendees (with their per-zone state as the server last knew it), the device's credentials
and sync cursor, and this device's own readings and door registrations. The readings and
registrations whose `state` is `pending` are the **outbox**.

Two rules keep offline decisions honest:

- A reading is committed (synchronous=FULL) before its verdict is returned, and it leaves the
  outbox only when the server answered `applied` or `duplicate`.
- An attendee's history is the server's state from the last pull *plus* this device's readings
  that no pull has reflected yet (`reflected = 0`). A reading is reflected once a pull that
  started after the server acknowledged it has been applied; until then its effect is added on
  top, so anti-passback holds within this device whatever the network does.

The tables are declared with SQLModel; hot paths (the gate's lookups, bulk pull pages) run as
plain SQL on one connection guarded by a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, create_engine

__all__ = ["SCHEMA_VERSION", "Store", "fold_key", "iso", "parse_iso"]

SCHEMA_VERSION = 1


# -- the schema, declared with SQLModel ---------------------------------------------------------
def _d(value: Any) -> Any:
    """A column default that plain SQL inserts get too (a server default)."""
    text = str(int(value)) if isinstance(value, bool | int) else value
    return Field(default=value, sa_column_kwargs={"server_default": text})


class _Local(SQLModel, registry=registry()):
    """The scanner's own registry: its table names never meet the server's."""


class Meta(_Local, table=True):
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
    __tablename__ = "attendees"
    __table_args__ = (
        Index("ix_att_code", "code"),
        Index("ix_att_first", "event_id", "first_key"),
        Index("ix_att_last", "event_id", "last_key"),
        Index("ix_att_email", "event_id", "email_key"),
    )
    id: str = Field(primary_key=True)
    event_id: str
    code: str | None = None
    qr: str | None = None
    status: str = _d("valid")
    ticket_type: str
    tags: str = _d("[]")
    first_name: str = _d("")
    last_name: str = _d("")
    email: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    state: str = _d("{}")  # {"zones": {...}, "checkpoint_entries": {...}} as the server knew it
    first_key: str = _d("")
    last_key: str = _d("")
    email_key: str = _d("")
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
    code: str
    direction: str
    status: str
    reason: str
    warnings: str = _d("[]")
    scanned_at: str
    hlc: str
    operator: str | None = None
    manual: bool = _d(False)
    source: str = _d("camera")
    zone_key: str | None = None
    occupancy_delta: int = _d(0)
    offline: bool = _d(True)
    summary: str = _d("{}")  # the attendee as shown at the door (wiped on revocation)
    inside_since: str | None = None
    inside_via: str | None = None
    state: str = _d("pending")  # pending | applied | duplicate | rejected
    reflected: bool = _d(False)
    acked_at: int | None = None  # the store's ack counter when the server answered
    attempts: int = _d(0)
    last_error: str | None = None
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
    first_name: str
    last_name: str
    email: str | None = None
    ticket_type: str
    tags: str = _d("[]")
    created_at: str
    hlc: str
    state: str = _d("pending")
    attempts: int = _d(0)
    last_error: str | None = None
    conflict_id: str | None = None
    extra: str | None = Field(default=None, sa_column=Column(Text))


# -- helpers ------------------------------------------------------------------------------------
def iso(value: datetime | None) -> str | None:
    """Times are stored as RFC 3339 UTC strings with microseconds (they sort as text)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fold_key(text: str | None) -> str:
    """The search form of a name or email: case-folded, accents removed ("Núñez" -> "nunez")."""
    if not text:
        return ""
    if text.isascii():
        return text.lower().strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


# -- the store ----------------------------------------------------------------------------------
class Store:
    """One SQLite connection shared by the gate's threads under a lock.

    Every write is one short transaction; `transaction()` groups several.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{self.path}")
        _Local.metadata.create_all(engine)
        engine.dispose()
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10
        )
        self.conn.row_factory = sqlite3.Row
        synchronous = os.environ.get("DOORCHECK_SCANNER_SYNCHRONOUS", "FULL").upper()
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("DOORCHECK_SCANNER_SYNCHRONOUS must be FULL, NORMAL or EXTRA")
        self.synchronous = synchronous
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "foreign_keys=ON",
            "busy_timeout=10000",
            "cache_size=-32000",
            "temp_store=MEMORY",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self._depth = 0
        self.config_version = 0  # bumped whenever events/zones/checkpoints/types are written
        self.ack_counter = int(self.get_meta("ack_counter") or 0)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (nested calls join the outer transaction)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    @contextmanager
    def relaxed(self) -> Iterator[sqlite3.Connection]:
        """A transaction that need not survive a power cut (a pull page: it can be downloaded
        again). Safe against a crash of the app all the same (WAL)."""
        with self.lock:
            self.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.transaction() as conn:
                    yield conn
            finally:
                self.conn.execute(f"PRAGMA synchronous={self.synchronous}")

    def query(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def one(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()  # type: ignore[arg-type]

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def get_json(self, key: str) -> Any:
        raw = self.get_meta(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, None if value is None else json.dumps(value))

    def next_ack(self) -> int:
        """Advance the ack counter (in the caller's transaction) and return its new value."""
        self.ack_counter += 1
        self.set_meta("ack_counter", str(self.ack_counter))
        return self.ack_counter

    # -- wipe --------------------------------------------------------------------------------
    def wipe_attendee_data(self) -> None:
        """What a revoked device forgets: every cached attendee and the names in its log."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM attendees")
            conn.execute("UPDATE readings SET summary = '{}'")
            conn.execute("UPDATE registrations SET first_name = '', last_name = '', email = NULL")
            conn.execute("UPDATE events SET cursor = NULL, public_key = NULL")
