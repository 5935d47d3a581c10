"""The headless gate: a small facade over modules with one job each: the scan pipeline
(`pipeline.py`), supervisor overrides (`override.py`), walk-ins (`walkins.py`), views of the cache
(`search.py`), pairing, sync (`syncer.py`), the store (`store/`), the data key and wipes
(`custody.py`), retention. The app, `doorcheck scan` and the tests drive a gate only through it.
A gate whose key needs a door PIN is *locked* until `unlock(pin)` (else `GateError(LOCKED)`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from scanner_app import retention
from scanner_app.client import Revoked, ServerClient, SyncError, WipeOrdered
from scanner_app.connections import Connections, save_credentials
from scanner_app.context import (
    GateContext,
    event_choices,
    gate_config,
    load_config,
    load_context,
    save_config,
)
from scanner_app.custody import DEFAULT, STORE_FILE, Custody, WipeNotice, default_data_dir
from scanner_app.errors import GateError, PairingError, Problem, WalkinInvalid
from scanner_app.holder import Holder, Parts
from scanner_app.links import parse_pairing_uri
from scanner_app.override import OverrideRequest, admit
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
from shared.sync import EventConfig, WipeReason

__all__ = ["STORE_FILE", "Gate", "GateError", "PairingError", "WalkinInvalid", "default_data_dir"]

EXPIRY_UPLOAD_S = 3.0  # how long an expiring gate tries to upload before it erases


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Gate:
    """`Gate(folder)`, `.pair(url, code)`, `.configure(event, checkpoint)`, `.submit(code)`.

    The data key comes from the platform's keyring (`keyring`: a backend, None for none) or a
    door PIN (`pin`, or `unlock(pin)` later). `transport` (an httpx transport) carries every
    request to the server (tests pass ASGI or mock transports where a socket adds nothing)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        pin: str | None = None,
        keyring: Any = DEFAULT,
        clock: Callable[[], datetime] = _utcnow,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.transport = transport
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []
        self.connections = Connections(lambda: self.store, lambda: self.revoked, transport)
        self._ctx: GateContext | None = None
        self._device_id: str | None = None
        self._config: GateConfig | None = None
        custody = Custody(self.data_dir, pin=pin, keyring=keyring, on_pin_wipe=self._changed)
        self.holder = self.keys = Holder(custody, self._build, self._changed)
        self.holder.opened.append(self._opened)
        if custody.need is None:
            self.holder.parts()

    @classmethod
    def open(cls, data_dir: Path | None = None, **kwargs: Any) -> Gate:
        return cls(data_dir or default_data_dir(), **kwargs)

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._clock

    def close(self) -> None:
        self.stop()
        self.connections.close()
        self.holder.close()

    # -- the data key ------------------------------------------------------------------------
    def _build(self, store: Store) -> Parts:
        syncer = Syncer(store, self._get_client, self._event_ids, self._changed, on_lost=self._lost)
        pipeline = ScanPipeline(
            store,
            clock=self._clock,
            device_id=lambda: store.get_meta("device_id"),
            online=lambda: syncer.state.online,
        )
        store.names.start()  # the in-memory name index fills in the background
        return Parts(store, syncer, pipeline, Directory(pipeline))

    def _opened(self) -> None:
        self._device_id = self._config = self._ctx = None
        self._drop_client()
        self._expire_due()

    @property
    def store(self) -> Store:
        return self.holder.parts().store

    @property
    def syncer(self) -> Syncer:
        return self.holder.parts().syncer

    @property
    def pipeline(self) -> ScanPipeline:
        return self.holder.parts().pipeline

    @property
    def directory(self) -> Directory:
        return self.holder.parts().directory

    def erase(self, reason: WipeReason = WipeReason.ORGANIZER) -> WipeNotice:
        """Erase everything this gate holds and tell the server (`Holder.erase`)."""
        self._drop_client()
        notice = self.holder.erase(reason, self.transport)
        self._changed()
        return notice

    def _lost(self, error: SyncError) -> None:
        """The server says this device was revoked or ordered wiped."""
        self.erase(WipeReason.ORGANIZER if isinstance(error, WipeOrdered) else WipeReason.REVOKED)

    def _expire_due(self) -> None:
        if self.holder.expire_due(self._clock(), lambda: self.drain(EXPIRY_UPLOAD_S)):
            self._ctx = None

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

    def _get_client(self) -> ServerClient | None:
        return self.connections.device()

    def _drop_client(self) -> None:
        self.connections.drop()

    def pair(self, server_url: str, code: str, name: str = "Scanner") -> None:
        """Trade an enrolment code for this device's token and download the event list."""
        creds = enrol(server_url, code, name, transport=self.transport)
        self.stop()
        self._drop_client()
        save_credentials(self.store, creds)
        self.holder.custody.clear_notice()
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
                retention.renew(self.store, self._clock())
            except Revoked as exc:
                self._lost(exc)
                return []
            except SyncError as exc:
                self.syncer.health.failed(exc)
        return self.events()

    @property
    def config(self) -> GateConfig | None:
        if self._config is None:
            self._config = load_config(self.store)
        return self._config

    def configure(
        self, event_id: str, checkpoint_id: str, direction: str = "in", operator: str = ""
    ) -> GateConfig:
        config = gate_config(self.store, event_id, checkpoint_id, direction, operator)
        save_config(self.store, config)
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
        """The events to keep pulling: the chosen one, unless its retention passed."""
        config = self.config
        if config is None or not retention.pullable(self.store, config.event_id, self._clock()):
            return []
        return [config.event_id]

    def _context(self) -> GateContext:
        config = self._configured()
        if self.revoked:
            raise GateError(Problem.REVOKED, "this device was revoked: pair it again")
        if self._ctx is None:
            self._expire_due()
        retention.check(self.store, config.event_id)
        ctx = self._ctx
        if (
            ctx is None
            or ctx.policy.id != config.checkpoint_id
            or ctx.version != self.store.config_version
        ):
            ctx = self._ctx = load_context(self.store, config)
        return ctx

    def _ctx_or_none(self) -> GateContext | None:
        with contextlib.suppress(GateError):
            return self._context()
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

    def override(self, request: OverrideRequest) -> GateVerdict:
        """A supervisor admits a denied guest with the event's override PIN (`override.admit`)."""
        verdict = admit(self.pipeline, self._context(), self._configured(), request)
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
        self._expire_due()
        state = self.syncer.state
        config = self.config
        notice = self.keys.notice
        return SyncStatus(
            paired=self.paired,
            online=state.online,
            offline_since=state.offline_since,
            pending=self.syncer.pending_count(),
            last_sync=state.last_sync,
            last_error=state.last_error,
            revoked=state.revoked or (notice is not None and notice.reason is WipeReason.REVOKED),
            clock_offset_ms=state.clock_offset_ms,
            server_url=self.server_url,
            syncing=state.syncing,
            attendees_cached=attendee_count(self.store),
            problem=state.problem.value if state.problem else None,
            expired=config is not None and retention.is_expired(self.store, config.event_id),
            pin_wanted=self.keys.pin_wanted,
            wiped=notice.reason.value if notice is not None else None,
        )

    # -- the admin's conflicts (an admin API key typed on this device) -------------------------
    def conflicts(self, api_key: str, status: str = "open") -> list[dict[str, Any]]:
        """The configured event's conflicts (raises `AdminError` for a key that is not one)."""
        return self.connections.admin(api_key).conflicts(self._configured().event_id, status)

    def resolve_conflict(
        self, api_key: str, conflict_id: str, resolution: str, note: str = ""
    ) -> dict[str, Any]:
        return self.connections.admin(api_key).resolve(conflict_id, resolution, note)

    # -- sync --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.holder.is_open and self.paired:  # a locked gate starts once unlocked
            self.syncer.start()

    def stop(self) -> None:
        if self.holder.is_open:
            self.syncer.stop()

    def sync_now(self, timeout: float = 30.0) -> bool:
        ok = self.syncer.sync_now(timeout)
        if not self.holder.is_open:  # erased by what the server answered
            self._changed()
            return False
        retention.renew(self.store, self._clock())
        self.invalidate()
        self._changed()
        return ok

    def drain(self, timeout: float) -> int:
        """Upload the outbox for up to `timeout` seconds; answers what is still pending."""
        return self.syncer.drain(timeout)

    def apply_events(self, events: list[EventConfig]) -> None:
        apply_events(self.store, events)
        self.invalidate()
