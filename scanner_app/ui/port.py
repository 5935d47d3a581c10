"""What the views need from the headless core: the `Gate` facade and the admin client, as
protocols, plus the core's error types, looked up lazily so the views import without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from scanner_app.state import (
    AttendeeSummary,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    OutboxItem,
    SyncStatus,
)

__all__ = [
    "AdminFactory",
    "AdminLike",
    "AdminUnavailable",
    "CoreErrors",
    "GateLike",
    "field_errors",
]


class GateLike(Protocol):
    """The members of `scanner_app.gate.Gate` the app uses (all blocking: call off the loop)."""

    @property
    def paired(self) -> bool: ...

    @property
    def revoked(self) -> bool: ...

    @property
    def config(self) -> GateConfig | None: ...

    def pair(self, server_url: str, code: str, name: str = "Scanner") -> None: ...

    def pair_uri(self, uri: str, name: str = "Scanner") -> None: ...

    def events(self) -> list[EventChoice]: ...

    def configure(
        self, event_id: str, checkpoint_id: str, direction: str, operator: str
    ) -> GateConfig: ...

    def set_direction(self, direction: str) -> None: ...

    def submit(self, text: str, *, source: str = "camera") -> GateVerdict: ...

    def check_in_attendee(self, attendee_id: str, direction: str | None = None) -> GateVerdict: ...

    def register_walkin(
        self, first_name: str, last_name: str, email: str, ticket_type: str, tags: list[str]
    ) -> GateVerdict: ...

    def search(self, q: str, limit: int = 30) -> list[AttendeeSummary]: ...

    def attendee(self, attendee_id: str) -> AttendeeSummary | None: ...

    def recent(self, limit: int = 50) -> list[GateVerdict]: ...

    def outbox(self, limit: int = 100) -> list[OutboxItem]: ...

    def status(self) -> SyncStatus: ...

    def stats(self) -> GateStats: ...

    def sync_now(self) -> object: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class AdminLike(Protocol):
    """`scanner_app.admin.AdminClient`: conflicts of an event, read one, resolve it."""

    def conflicts(self, event_id: str, status: str = "open") -> list[dict[str, Any]]: ...

    def conflict(self, conflict_id: str) -> dict[str, Any]: ...

    def resolve(self, conflict_id: str, resolution: str, note: str) -> dict[str, Any]: ...


AdminFactory = Callable[[str, str], AdminLike]  # (server_url, api_key) -> client


@dataclass(frozen=True, slots=True)
class CoreErrors:
    """The exceptions the core raises for input it cannot accept; the app shows their text.

    `walkin` carries `.errors: dict[field, message]` for the form's inline errors.
    """

    gate: type[Exception]  # any refusal (not paired, not configured, revoked…)
    pairing: type[Exception]
    walkin: type[Exception]
    admin: type[Exception]

    @classmethod
    def real(cls) -> CoreErrors:
        from scanner_app.gate import GateError, PairingError, WalkinInvalid

        return cls(gate=GateError, pairing=PairingError, walkin=WalkinInvalid, admin=_admin_error())


class AdminUnavailable(Exception):
    """The admin client module is not installed with this build."""


def _admin_error() -> type[Exception]:
    try:
        from scanner_app.admin import AdminError
    except ImportError:
        return AdminUnavailable
    return AdminError


def field_errors(exc: Exception) -> Mapping[str, str]:
    """The per-field messages of a walk-in validation error (empty when it has none)."""
    errors = getattr(exc, "errors", None)
    return dict(errors) if isinstance(errors, Mapping) else {}


def real_admin_factory(server_url: str, api_key: str) -> AdminLike:
    try:
        from scanner_app.admin import AdminClient
    except ImportError:
        raise AdminUnavailable("the admin client is not available in this build") from None
    client: AdminLike = AdminClient(server_url, api_key)
    return client
