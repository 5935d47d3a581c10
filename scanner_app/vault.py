"""Where the gate's data key lives: the random 256-bit key that seals every personal field and
credential the gate stores and keys its blind indexes (`scanner_app.store.cipher`):

- `KeyringStore`: the platform's secure storage through `keyring` (Keychain, libsecret, Windows
  Credential Manager); only a backend that is really secure counts;
- `PinStore`: wrapped by a key derived (scrypt) from a door PIN that staff enter when the gate
  starts, in `keyslot.json` beside the data (useless without the PIN); wrong PINs are
  rate-limited and the tenth wipes the gate.

The key is never written anywhere in clear. Measured before choosing field-level sealing over
SQLCipher (docs/scanner.md, "A lost gate"): both keep the gate's goals, and only this runs in
Flet's mobile builds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from scanner_app.errors import GateError, Problem

__all__ = [
    "MAX_PIN_FAILURES",
    "KeyStore",
    "KeyringStore",
    "PinStore",
    "PinWrong",
    "secure_keyring",
]

MAX_PIN_FAILURES = 10
KEYSLOT = "keyslot.json"
_NONCE = 12


class KeyStore(Protocol):
    """Where a gate's data key lives."""

    name: str

    def load(self) -> bytes | None:
        """The key, or None when there is none yet (a new gate)."""

    def save(self, key: bytes) -> None: ...

    def forget(self) -> None:
        """Erase the key (a wipe): the sealed data can never be read again."""


def secure_keyring() -> Any | None:
    """The platform's keyring backend when it is a secure one (not a file in clear, not the
    'no keyring' backend), else None."""
    try:
        import keyring
        from keyring.backend import KeyringBackend
    except ImportError:
        return None
    backend: KeyringBackend = keyring.get_keyring()
    module = type(backend).__module__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")):
        return None
    try:
        return backend if float(backend.priority) >= 1 else None  # type: ignore[arg-type]
    except Exception:
        return None


class KeyringStore:
    """`KeyringStore(folder)`: the key in the platform's secure storage, under the gate folder's
    path (one key per gate). `backend` is a keyring backend (tests pass one of their own)."""

    name = "keyring"
    SERVICE = "doorcheck-gate"

    def __init__(self, folder: Path, backend: Any) -> None:
        self.account = str(Path(folder).resolve())
        self.backend = backend

    def load(self) -> bytes | None:
        stored = self.backend.get_password(self.SERVICE, self.account)
        return None if not stored else base64.b64decode(stored)

    def save(self, key: bytes) -> None:
        self.backend.set_password(self.SERVICE, self.account, base64.b64encode(key).decode())

    def forget(self) -> None:
        with contextlib.suppress(Exception):  # there was none
            self.backend.delete_password(self.SERVICE, self.account)


class PinWrong(GateError):
    """A wrong PIN; `remaining` tries before the gate wipes itself, `wait_s` before the next."""

    def __init__(self, remaining: int, wait_s: float) -> None:
        super().__init__(
            Problem.PIN_WRONG, f"wrong PIN: {remaining} tries left before this gate is wiped"
        )
        self.remaining, self.wait_s = remaining, wait_s


@dataclass
class _Slot:
    salt: str
    nonce: str
    wrapped: str
    failures: int = 0
    next_try_at: float = 0.0


class PinStore:
    """`PinStore(folder, pin)`: the key wrapped under scrypt(PIN) in the folder's keyslot. The
    first `save` sets the PIN; `load` unwraps with it. Wrong PINs wait 0, 0, 0, 1, 2, 4… s
    between tries (the count is kept in the slot, so a restart does not reset it), and the
    tenth wipes the gate (`on_wipe`)."""

    name = "pin"
    N, R, P = 2**15, 8, 1  # ~0.1 s per try on the standard machine

    def __init__(self, folder: Path, pin: str, *, on_wipe: Any = None) -> None:
        self.path = Path(folder) / KEYSLOT
        self.pin = pin.strip()
        self.on_wipe = on_wipe
        if not (self.pin.isascii() and self.pin.isdigit()) or not 4 <= len(self.pin) <= 12:
            raise GateError(Problem.PIN_INVALID, "a door PIN is 4 to 12 digits")

    def _derive(self, salt: bytes) -> AESGCM:
        kdf = Scrypt(salt=salt, length=32, n=self.N, r=self.R, p=self.P)
        return AESGCM(kdf.derive(self.pin.encode()))

    def _read(self) -> _Slot | None:
        if not self.path.exists():
            return None
        return _Slot(**json.loads(self.path.read_text()))

    def _write(self, slot: _Slot) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        fd = os.open(temp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(slot.__dict__, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)

    def load(self) -> bytes | None:
        slot = self._read()
        if slot is None:
            return None
        wait = slot.next_try_at - time.time()
        if wait > 0:
            raise PinWrong(MAX_PIN_FAILURES - slot.failures, wait)
        b64 = base64.b64decode
        try:
            key = self._derive(b64(slot.salt)).decrypt(b64(slot.nonce), b64(slot.wrapped), b"pin")
        except InvalidTag:
            slot.failures += 1
            if slot.failures >= MAX_PIN_FAILURES:
                if self.on_wipe is not None:
                    self.on_wipe()
                self.forget()
                raise GateError(
                    Problem.WIPED, "10 wrong PINs: this gate's data was erased"
                ) from None
            delay = 0.0 if slot.failures < 3 else float(2 ** (slot.failures - 3))
            slot.next_try_at = time.time() + delay
            self._write(slot)
            raise PinWrong(MAX_PIN_FAILURES - slot.failures, delay) from None
        if slot.failures:
            slot.failures, slot.next_try_at = 0, 0.0
            self._write(slot)
        return key

    def save(self, key: bytes) -> None:
        salt, nonce = os.urandom(16), os.urandom(_NONCE)
        wrapped = self._derive(salt).encrypt(nonce, key, b"pin")
        b64 = base64.b64encode
        self._write(_Slot(b64(salt).decode(), b64(nonce).decode(), b64(wrapped).decode()))

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)
