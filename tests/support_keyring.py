"""The secure storage the test suite gives gates: a keyring backend that keeps keys in one JSON
file outside every gate's folder (`DOORCHECK_TEST_KEYRING`), so that a gate reopened by the
same or another process (the CLI tests) finds its key, as with the platform's keyring. Selected
with `PYTHON_KEYRING_BACKEND=tests.support_keyring.TestKeyring` (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

_LOCK = threading.Lock()


class TestKeyring(KeyringBackend):
    priority = 10  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ["DOORCHECK_TEST_KEYRING"])

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, data: dict[str, str]) -> None:
        temp = self.path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps(data))
        os.replace(temp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}\x1f{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        with _LOCK:
            data = self._read()
            data[f"{service}\x1f{username}"] = password
            self._write(data)

    def delete_password(self, service: str, username: str) -> None:
        with _LOCK:
            data = self._read()
            if data.pop(f"{service}\x1f{username}", None) is None:
                raise PasswordDeleteError(username)
            self._write(data)
