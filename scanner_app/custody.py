"""Who holds the key to a gate's folder, and how the folder is emptied.

`Custody(folder)` opens the gate's store with its data key from wherever it lives
(`scanner_app.vault`): the platform's secure storage, or a door PIN. Without either the gate is
*locked*: `need` says whether staff must enter the PIN (`"enter"`) or choose one (`"choose"`:
no secure storage on this machine). `erase(reason)` closes the store, shreds its files, forgets
the key and leaves a notice (`wiped.json`: why and when, nothing personal) that the app shows
until the device is paired again. A store file whose key is gone or wrong is moved aside, never
read and never deleted (it is sealed: it leaks nothing, and the key may come back).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from scanner_app.errors import GateError, Problem
from scanner_app.store import KeyMismatch, Store, shred, store_files
from scanner_app.store.cipher import KEY_BYTES, Cipher
from scanner_app.store.legacy import is_legacy, upgrade_legacy
from scanner_app.vault import KEYSLOT, KeyringStore, PinStore, secure_keyring
from shared.sync import WipeReason

__all__ = ["STORE_FILE", "WIPED_FILE", "Custody", "WipeNotice", "default_data_dir"]

log = logging.getLogger("doorcheck.scanner.custody")

STORE_FILE = "scanner.db"
WIPED_FILE = "wiped.json"
DEFAULT: Any = object()  # "the platform's keyring, if it is a secure one"


def default_data_dir() -> Path:
    env = os.environ.get("DOORCHECK_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorcheck"


@dataclass(frozen=True)
class WipeNotice:
    """What the app says after a wipe: why, when, and how many queued items it took."""

    reason: WipeReason
    at: datetime
    pending: int = 0


class Custody:
    """`Custody(folder, pin=None, keyring=DEFAULT)`; `open()` answers the store or raises
    `GateError(LOCKED | PIN_REQUIRED)`; `unlock(pin)` then `open()`."""

    def __init__(
        self,
        folder: Path,
        *,
        pin: str | None = None,
        keyring: Any = DEFAULT,
        on_pin_wipe: Callable[[], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STORE_FILE
        self.keyring = secure_keyring() if keyring is DEFAULT else keyring
        self.pin = pin
        self.on_pin_wipe = on_pin_wipe
        self.store: Store | None = None

    # -- where the key is ---------------------------------------------------------------------
    @property
    def protected_by_pin(self) -> bool:
        return (self.folder / KEYSLOT).exists()

    @property
    def need(self) -> Literal["enter", "choose"] | None:
        """What staff must do before the gate opens: enter its PIN, choose one, or nothing."""
        if self.store is not None or self.pin is not None:
            return None
        if self.protected_by_pin:
            return "enter"
        return None if self.keyring is not None else "choose"

    def _ring(self) -> KeyringStore | None:
        return None if self.keyring is None else KeyringStore(self.folder, self.keyring)

    def _pins(self, pin: str) -> PinStore:
        return PinStore(self.folder, pin, on_wipe=self._pin_wipe)

    def _pin_wipe(self) -> None:
        self.close()
        self._shred(WipeReason.PIN, 0)
        if self.on_pin_wipe is not None:
            self.on_pin_wipe()

    def _key(self) -> bytes:
        """The data key, from the PIN slot or the keyring; a new one for a new gate."""
        need = self.need
        if need == "enter":
            raise GateError(Problem.LOCKED, "enter the door PIN to open this gate")
        if need == "choose":
            raise GateError(
                Problem.PIN_REQUIRED, "this machine has no secure storage: choose a door PIN"
            )
        ring = self._ring()
        if self.pin is not None:
            pins = self._pins(self.pin)
            key = pins.load()
            if key is None:  # a new PIN: a new key, or the keyring's moved under it
                key = (ring.load() if ring else None) or self._fresh_key()
                pins.save(key)
                if ring is not None:
                    ring.forget()
            return key
        assert ring is not None
        key = ring.load()
        if key is None:
            key = self._fresh_key()
            ring.save(key)
        return key

    def _fresh_key(self) -> bytes:
        if self.path.exists() and not is_legacy(self.path):
            self._set_aside("its key is gone")
        return os.urandom(KEY_BYTES)

    def _set_aside(self, why: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for file in store_files(self.path):
            if file.exists():
                file.rename(file.with_name(f"{file.name}.unreadable-{stamp}"))
        log.warning("%s was set aside: %s", self.path, why)

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> Store:
        if self.store is not None:
            return self.store
        cipher = Cipher(self._key())
        if self.path.exists() and is_legacy(self.path):
            upgrade_legacy(self.path, cipher)
        try:
            self.store = Store(self.path, cipher)
        except KeyMismatch:
            self._set_aside("it was sealed under another key")
            self.store = Store(self.path, cipher)
        return self.store

    def unlock(self, pin: str) -> Store:
        """Open with a door PIN (entered, or chosen on a machine without secure storage)."""
        self.pin = pin
        try:
            self._pins(pin)  # a PIN of the wrong shape is refused before it is kept
            return self.open()
        except GateError:
            self.pin = None
            raise

    def set_pin(self, pin: str) -> None:
        """Move the open gate's key under a door PIN (the event asks for one)."""
        store = self.open()
        pins = self._pins(pin)
        pins.save(store.cipher.data_key)
        ring = self._ring()
        if ring is not None:
            ring.forget()
        self.pin = pin

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- erasing ------------------------------------------------------------------------------
    def erase(self, reason: WipeReason, pending: int) -> WipeNotice:
        """Close and shred the store, forget the key, leave the notice."""
        self.close()
        return self._shred(reason, pending)

    def _shred(self, reason: WipeReason, pending: int) -> WipeNotice:
        for file in store_files(self.path):
            shred(file)
        ring = self._ring()
        if ring is not None:
            ring.forget()
        (self.folder / KEYSLOT).unlink(missing_ok=True)
        self.pin = None
        notice = WipeNotice(reason, datetime.now(UTC), pending)
        _write_private(
            self.folder / WIPED_FILE,
            {"reason": reason.value, "at": notice.at.isoformat(), "pending": pending},
        )
        log.warning("gate data erased (%s); %d queued items went with it", reason.value, pending)
        return notice

    @property
    def notice(self) -> WipeNotice | None:
        try:
            raw = json.loads((self.folder / WIPED_FILE).read_text())
            at = datetime.fromisoformat(raw["at"])
            return WipeNotice(WipeReason(raw["reason"]), at, int(raw.get("pending", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear_notice(self) -> None:
        (self.folder / WIPED_FILE).unlink(missing_ok=True)


def _write_private(path: Path, value: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out)
