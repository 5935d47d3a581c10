"""The headless gate: everything a door does except drawing it, as one small facade over modules
with one job each: the scan pipeline (`pipeline.py`), walk-ins (`walkins.py`), lookups and
views of the cache (`search.py`), pairing (`pairing.py`), sync (`syncer.py`), the store that
alone holds SQL (`store/`). The Flet app, `doorcheck scan` and the tests drive a gate only
through this class.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scanner_app.admin import AdminClient
from scanner_app.client import ServerClient, SyncError
from scanner_app.context import GateContext, event_choices, gate_config, load_context
from scanner_app.errors import GateError, PairingError, Problem, WalkinInvalid
from scanner_app.links import parse_pairing_uri
from scanner_app.pairing import enrol
from scanner_app.pipeline import ScanPipeline
from scanner_app.search import Directory
from scanner_app.state import (
    AttendeeSummary,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    OutboxItem,
    SyncStatus,
)
from scanner_app.store import Store
from scanner_app.store.cache import apply_events
from scanner_app.store.people import attendee_count
from scanner_app.syncer import Syncer
from scanner_app.walkins import WalkIn, register_walkin
from shared.sync import EventConfig

__all__ = ["Gate", "GateError", "PairingError", "WalkinInvalid", "default_data_dir"]

STORE_FILE = "scanner.db"


def default_data_dir() -> Path:
    env = os.environ.get("DOORCHECK_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorcheck"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Gate:
    """`Gate(folder)`, `.pair(url, code)`, `.configure(event, checkpoint)`, `.submit(code)`.

    `transport` (an httpx transport) carries every request to the server: tests pass
    `httpx.ASGITransport`-like or mock transports where a socket adds nothing.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir / STORE_FILE)
        self.transport = transport
        self._listeners: list[Callable[[], None]] = []
        self._client: ServerClient | None = None
        self._client_lock = threading.Lock()
        self._ctx: GateContext | None = None
        self._device_id: str | None = None
        self._config: GateConfig | None = None
        self._admins: dict[str, AdminClient] = {}
        self.syncer = Syncer(self.store, self._get_client, self._event_ids, self._changed)
        self.pipeline = ScanPipeline(
            self.store, clock=clock, device_id=lambda: self.device_id, online=self._online
        )
        self.directory = Directory(self.pipeline)

    @classmethod
    def open(cls, data_dir: Path | None = None, **kwargs: Any) -> Gate:
        return cls(data_dir or default_data_dir(), **kwargs)

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.pipeline.clock

    def close(self) -> None:
        self.stop()
        self._drop_client()
        for admin in self._admins.values():
            admin.close()
        self.store.close()

    # -- listeners ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _changed(self) -> None:
        for callback in list(self._listeners):
            with contextlib.suppress(Exception):  # a view's error must never break the gate
                callback()

    # -- pairing -----------------------------------------------------------------------------
    @property
    def device_id(self) -> str | None:
        if self._device_id is None:
            self._device_id = self.store.get_meta("device_id")
        return self._device_id

    @property
    def server_url(self) -> str | None:
        return self.store.get_meta("server_url")

    @property
    def paired(self) -> bool:
        return self.store.get_meta("device_token") is not None and not self.revoked

    @property
    def revoked(self) -> bool:
        return self.syncer.state.revoked

    def _online(self) -> bool:
        return self.syncer.state.online

    def _get_client(self) -> ServerClient | None:
        with self._client_lock:
            if self._client is None:
                url, token = self.server_url, self.store.get_meta("device_token")
                if not url or not token or self.revoked:
                    return None
                self._client = ServerClient(url, token, transport=self.transport)
            return self._client

    def _drop_client(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def pair(self, server_url: str, code: str, name: str = "Scanner") -> None:
        """Trade an enrolment code for this device's token and download the event list."""
        creds = enrol(server_url, code, name, transport=self.transport)
        self.stop()
        self._drop_client()
        for key, value in (
            ("server_url", creds.server_url),
            ("device_id", creds.device_id),
            ("device_token", creds.device_token),
            ("organization_id", creds.organization_id),
            ("device_name", creds.device_name),
            ("revoked", None),
        ):
            self.store.set_meta(key, value)
        self._device_id = None
        self.syncer.health.reset()
        self.pipeline.restart_clock(creds.device_id)
        self.refresh_events()
        self._changed()

    def pair_uri(self, uri: str, name: str = "Scanner") -> None:
        """`doorcheck://pair?server=<url>&code=<code>` (the admin's pairing QR)."""
        server_url, code = parse_pairing_uri(uri)
        self.pair(server_url, code, name)

    # -- configuration -----------------------------------------------------------------------
    def events(self) -> list[EventChoice]:
        return event_choices(self.store)

    def refresh_events(self) -> list[EventChoice]:
        client = self._get_client()
        if client is not None:
            try:
                self.syncer.puller.refresh_events(client)
                self.syncer.health.ok()
            except SyncError as exc:
                self.syncer.health.failed(exc)
        return self.events()

    @property
    def config(self) -> GateConfig | None:
        if self._config is None:
            raw = self.store.get_json("config")
            self._config = None if raw is None else GateConfig(**raw)
        return self._config

    def configure(
        self, event_id: str, checkpoint_id: str, direction: str = "in", operator: str = ""
    ) -> GateConfig:
        config = gate_config(self.store, event_id, checkpoint_id, direction, operator)
        self.store.set_json(
            "config",
            {
                "event_id": config.event_id,
                "checkpoint_id": config.checkpoint_id,
                "direction": config.direction,
                "operator": config.operator,
            },
        )
        self._ctx = None
        self._config = None
        self.syncer.wake_puller()
        self._changed()
        return config

    def set_direction(self, direction: str) -> None:
        config = self._configured()
        self.configure(config.event_id, config.checkpoint_id, direction, config.operator)

    def _configured(self) -> GateConfig:
        config = self.config
        if config is None:
            raise GateError(Problem.NOT_CONFIGURED, "choose an event and a checkpoint first")
        return config

    def _event_ids(self) -> list[str]:
        config = self.config
        return [config.event_id] if config else []

    def _context(self) -> GateContext:
        config = self._configured()
        if self.revoked:
            raise GateError(Problem.REVOKED, "this device was revoked: pair it again")
        ctx = self._ctx
        if (
            ctx is None
            or ctx.policy.id != config.checkpoint_id
            or ctx.version != self.store.config_version
        ):
            ctx = self._ctx = load_context(self.store, config)
        return ctx

    def _ctx_or_none(self) -> GateContext | None:
        try:
            return self._context()
        except GateError:
            return None

    def invalidate(self) -> None:
        """Drop the cached checkpoint context (after a pull changed the configuration)."""
        self._ctx = None

    # -- the door ----------------------------------------------------------------------------
    def submit(self, text: str | bytes, *, source: str = "camera") -> GateVerdict:
        """Decide one scanned or typed code, record it, enqueue it, return the verdict."""
        verdict = self.pipeline.submit(self._context(), self._configured(), text, source)
        self._recorded(verdict)
        return verdict

    def check_in_attendee(self, attendee_id: str, direction: str | None = None) -> GateVerdict:
        """Manual check-in (or out) of an attendee picked from a search: recorded as manual."""
        verdict = self.pipeline.check_in(
            self._context(), self._configured(), attendee_id, direction
        )
        self._recorded(verdict)
        return verdict

    def register_walkin(
        self,
        first_name: str,
        last_name: str,
        email: str | None,
        ticket_type: str,
        tags: list[str] | None = None,
    ) -> GateVerdict:
        """Register a walk-in at the door and admit them at once (queued for the server)."""
        walk_in = WalkIn(first_name, last_name, email, ticket_type, tags)
        verdict = register_walkin(self.pipeline, self._context(), self._configured(), walk_in)
        self._recorded(verdict)
        return verdict

    def _recorded(self, verdict: GateVerdict) -> None:
        if verdict.id is not None:
            self.syncer.wake()
        self._changed()

    # -- reading the cache -------------------------------------------------------------------
    def attendee(self, attendee_id: str) -> AttendeeSummary | None:
        return self.directory.attendee(attendee_id, self._ctx_or_none())

    def search(self, q: str, limit: int = 30) -> list[AttendeeSummary]:
        config = self.config
        event_id = config.event_id if config else None
        return self.directory.search(q, self._ctx_or_none(), event_id, limit)

    def recent(self, limit: int = 50) -> list[GateVerdict]:
        return self.directory.recent(limit)

    def outbox(self, limit: int = 100) -> list[OutboxItem]:
        return self.directory.outbox(limit)

    def stats(self) -> GateStats:
        return self.directory.stats(self._ctx_or_none())

    def status(self) -> SyncStatus:
        state = self.syncer.state
        return SyncStatus(
            paired=self.paired,
            online=state.online,
            offline_since=state.offline_since,
            pending=self.syncer.pending_count(),
            last_sync=state.last_sync,
            last_error=state.last_error,
            revoked=state.revoked,
            clock_offset_ms=state.clock_offset_ms,
            server_url=self.server_url,
            syncing=state.syncing,
            attendees_cached=attendee_count(self.store),
            problem=state.problem.value if state.problem else None,
        )

    # -- the admin's conflicts (an admin API key typed on this device) -------------------------
    def _admin(self, api_key: str) -> AdminClient:
        url = self.server_url
        if not url:
            raise GateError(Problem.NOT_PAIRED, "this device is not paired with a server")
        if api_key not in self._admins:
            self._admins[api_key] = AdminClient(url, api_key, transport=self.transport)
        return self._admins[api_key]

    def conflicts(self, api_key: str, status: str = "open") -> list[dict[str, Any]]:
        """The configured event's conflicts (raises `AdminError` for a key that is not one)."""
        return self._admin(api_key).conflicts(self._configured().event_id, status)

    def resolve_conflict(
        self, api_key: str, conflict_id: str, resolution: str, note: str = ""
    ) -> dict[str, Any]:
        return self._admin(api_key).resolve(conflict_id, resolution, note)

    # -- sync --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.paired:
            self.syncer.start()

    def stop(self) -> None:
        self.syncer.stop()

    def sync_now(self, timeout: float = 30.0) -> bool:
        ok = self.syncer.sync_now(timeout)
        self.invalidate()
        self._changed()
        return ok

    def drain(self, timeout: float) -> int:
        """Upload the outbox for up to `timeout` seconds; answers what is still pending."""
        return self.syncer.drain(timeout)

    def apply_events(self, events: list[EventConfig]) -> None:
        apply_events(self.store, events)
        self.invalidate()
