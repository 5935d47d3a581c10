"""What the screens need from the rest of the scanner, as protocols: the gate (the headless core,
also the app's only way to the server, for the admin's conflicts too) and the camera feed. The
real ones are passed in by whoever starts the app (`doorcheck scanner`, `doorcheck demo`); the
app imports no database, HTTP or OpenCV code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from scanner_app.state import (
    AttendeeSummary,
    CameraListener,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    OutboxItem,
    OverrideRequest,
    SyncStatus,
)

__all__ = ["CameraLike", "GateLike", "KeysLike"]


class KeysLike(Protocol):
    """`scanner_app.holder.Holder` as `gate.keys`: the gate's data key and its door PIN."""

    @property
    def locked(self) -> str | None: ...  # "enter" | "choose" | None

    def unlock(self, pin: str) -> None: ...

    def set_pin(self, pin: str) -> None: ...

    @property
    def notice(self) -> Any: ...  # scanner_app.custody.WipeNotice | None


class GateLike(Protocol):
    """The members of `scanner_app.gate.Gate` the app uses (all blocking: call off the loop).
    Refusals raise `scanner_app.errors.GateError` (its `code` says why)."""

    @property
    def keys(self) -> KeysLike: ...

    @property
    def paired(self) -> bool: ...

    @property
    def revoked(self) -> bool: ...

    @property
    def config(self) -> GateConfig | None: ...

    def pair(self, server_url: str, code: str, name: str = "Scanner") -> None: ...

    def override(self, request: OverrideRequest) -> GateVerdict: ...

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

    def conflicts(self, api_key: str, status: str = "open") -> list[dict[str, Any]]: ...

    def resolve_conflict(
        self, api_key: str, conflict_id: str, resolution: str, note: str = ""
    ) -> dict[str, Any]: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class CameraLike(Protocol):
    """`scanner_app.camera_feed.CameraFeed`: one camera shared by every window."""

    problem: str | None

    @property
    def frame_seq(self) -> int: ...

    def subscribe(self, listener: CameraListener) -> Callable[[], None]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None: ...

    def jpeg(self) -> tuple[int, bytes | None]: ...
