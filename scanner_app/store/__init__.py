"""The gate's local store: one SQLite file (WAL) in the data folder.

It holds what a gate needs to decide alone: the cached events, ticket types, zones, checkpoints
and attendees (with their per-zone state as the server last knew it), the device's credentials
and sync cursor, and this device's own readings and door registrations. The readings and
registrations whose `state` is `pending` are the **outbox**.

Two rules keep offline decisions honest:

- A reading is committed (synchronous=FULL) before its verdict is returned, and it leaves the
  outbox only when the server answered `applied` or `duplicate`.
- An attendee's history is the server's state from the last pull *plus* this device's readings
  that no pull has reflected yet (`reflected = 0`), re-decided on top of it with
  `shared.timeline`. The server answers each upload with the change sequence that reflects it;
  a reading is reflected once a completed pull has reached that sequence (in the transaction
  that applies the pull's last page), so anti-passback and occupancy hold within this device
  whatever the network does.

Personal fields and credentials are sealed under the gate's data key (`cipher.py`): a copy of
the folder shows no name, email, code or token (docs/scanner.md, "A lost gate").

The tables are declared with SQLModel (`schema.py`); every statement lives in this package:
connection and metadata here, pulled data in `cache.py`, the device's readings and outbox in
`readings.py`, attendee lookups in `people.py`, events and checkpoints in `events.py`, the
upgrade of a file from before sealing in `legacy.py`.
"""

from __future__ import annotations

import base64
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

from cryptography.exceptions import InvalidTag
from sqlmodel import create_engine

from scanner_app.store.cipher import Cipher
from scanner_app.store.names import NameIndex
from scanner_app.store.schema import metadata

__all__ = ["SCHEMA_VERSION", "KeyMismatch", "Store", "fold_key", "iso", "parse_iso"]

SCHEMA_VERSION = 3  # 3: personal fields sealed
_KEY_CHECK = b"doorcheck gate key check"


class KeyMismatch(Exception):
    """The file was sealed under another data key (or is not a gate's file)."""


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


def _private(path: Path) -> None:
    """The gate's folder is its owner's alone (0700) and so are its files (0600): attendees'
    names and the device's token are in them. SQLite gives its -wal and -shm files the mode of
    the database file, so creating that file 0600 first covers them; an existing folder or file
    is put right on every start."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name != "posix":
        return
    os.chmod(folder, 0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        sibling = folder / name
        if sibling.exists():
            os.chmod(sibling, 0o600)


# -- the store ----------------------------------------------------------------------------------
def shred(path: Path) -> None:
    """Overwrite a file with zeros before removing it (as far as the file system lets: flash
    storage may keep old blocks, which is why personal data is only ever written sealed)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    with open(path, "r+b", buffering=0) as out:
        block = bytes(1 << 16)
        for _ in range(0, size, len(block)):
            out.write(block)
        os.fsync(out.fileno())
    path.unlink()


def store_files(path: Path) -> list[Path]:
    """A store's file and SQLite's companions of it."""
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


class Store:
    """One SQLite connection shared by the gate's threads under a lock, and the cipher that
    seals its personal fields (`seal`, `unseal`, `tag`).

    Every write is one short transaction; `transaction()` groups several.
    """

    def __init__(self, path: Path, cipher: Cipher) -> None:
        self.path = Path(path)
        self.cipher = cipher
        _private(self.path)
        engine = create_engine(f"sqlite:///{self.path}")
        metadata.create_all(engine)
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
        self.names = NameIndex(self)
        try:
            self._check_key()
        except KeyMismatch:
            self.conn.close()
            raise

    def _check_key(self) -> None:
        """A new file gets a check value sealed under the key; an existing one must open."""
        check = self.get_meta("key_check")
        if check is None:
            with self.transaction():
                if self.one("SELECT 1 FROM readings UNION ALL SELECT 1 FROM attendees LIMIT 1"):
                    raise KeyMismatch("a gate file without its key check")
                self.set_meta("key_check", _b64(self.cipher.seal(_KEY_CHECK, b"key_check")))
                self.set_meta("schema_version", str(SCHEMA_VERSION))
            return
        try:
            ok = self.cipher.open(base64.b64decode(check), b"key_check") == _KEY_CHECK
        except (InvalidTag, ValueError):
            ok = False
        if not ok:
            raise KeyMismatch(f"{self.path} was sealed under another key")

    def close(self) -> None:
        self.names.stop()
        with self.lock:
            self.conn.close()

    # -- sealing -----------------------------------------------------------------------------
    def seal(self, value: Any, row_id: str) -> bytes:
        return self.cipher.seal(value, row_id.encode())

    def unseal(self, sealed: bytes, row_id: str) -> Any:
        return self.cipher.open(sealed, row_id.encode())

    def tag(self, text: str | None) -> bytes | None:
        return self.cipher.tag(text)

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

    def get_secret(self, key: str) -> str | None:
        """A credential or a personal setting, stored sealed."""
        raw = self.get_meta(key)
        return None if raw is None else str(self.unseal(base64.b64decode(raw), f"meta:{key}"))

    def set_secret(self, key: str, value: str | None) -> None:
        sealed = None if value is None else _b64(self.seal(value, f"meta:{key}"))
        self.set_meta(key, sealed)

    def get_json(self, key: str) -> Any:
        raw = self.get_meta(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, None if value is None else json.dumps(value))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
