"""The gate's connections to its server: the device's own client, built from the stored
credentials when they exist (and dropped when they change), and the clients of admins who typed
an API key on this device to review conflicts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from scanner_app.admin import AdminClient
from scanner_app.client import ServerClient
from scanner_app.errors import GateError, Problem
from scanner_app.pairing import Credentials
from scanner_app.store import Store
from scanner_app.store.readings import pending_count

__all__ = ["Connections", "save_credentials"]


def save_credentials(store: Store, creds: Credentials) -> None:
    """A new pairing: the server's address and this device's identity; its token sealed."""
    with store.transaction():
        for key, value in (
            ("server_url", creds.server_url),
            ("device_id", creds.device_id),
            ("organization_id", creds.organization_id),
            ("device_name", creds.device_name),
            ("revoked", None),
        ):
            store.set_meta(key, value)
        store.set_secret("device_token", creds.device_token)


class Connections:
    """`device()` answers the device's client (None while unpaired or revoked); `admin(key)` an
    admin's. `store()` is the gate's open store."""

    def __init__(
        self,
        store: Callable[[], Store],
        revoked: Callable[[], bool],
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.store, self.revoked, self.transport = store, revoked, transport
        self._client: ServerClient | None = None
        self._lock = threading.Lock()
        self._admins: dict[str, AdminClient] = {}

    def device(self) -> ServerClient | None:
        with self._lock:
            if self._client is None:
                store = self.store()
                url, token = store.get_meta("server_url"), store.get_secret("device_token")
                if not url or not token or self.revoked():
                    return None
                self._client = ServerClient(
                    url, token, transport=self.transport, pending=lambda: pending_count(store)
                )
            return self._client

    def drop(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def admin(self, api_key: str) -> AdminClient:
        url = self.store().get_meta("server_url")
        if not url:
            raise GateError(Problem.NOT_PAIRED, "this device is not paired with a server")
        if api_key not in self._admins:
            self._admins[api_key] = AdminClient(url, api_key, transport=self.transport)
        return self._admins[api_key]

    def close(self) -> None:
        self.drop()
        for admin in self._admins.values():
            admin.close()
        self._admins.clear()
