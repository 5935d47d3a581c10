"""What the screens' handlers may ask of the app that holds them (`DoorApp` is one): the window,
the gate, the words, what is shown, and how to show something else. Handlers depend on this,
not on the app, so the two never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import flet as ft

from scanner_app.state import EventChoice, GateConfig, GateVerdict, SyncStatus
from scanner_app.ui.i18n import Texts
from scanner_app.ui.navigation import Screen
from scanner_app.ui.port import CameraLike, GateLike
from scanner_app.ui.theme import Palette
from scanner_app.ui.viewmodel import ADMIT_SECONDS

__all__ = ["AppOptions", "Shell"]

S = TypeVar("S")


@dataclass(frozen=True)
class AppOptions:
    camera: CameraLike | None = None
    verdict_seconds: float = ADMIT_SECONDS
    lang: str = "en"
    high_contrast: bool = False
    sounds: bool = True


class Shell(Protocol):
    page: ft.Page
    gate: GateLike
    options: AppOptions
    t: Texts
    screen: Screen
    events: list[EventChoice]
    config: GateConfig | None
    status: SyncStatus | None
    revoked: bool
    lock_mode: str  # what the lock screen asks: enter | choose | set
    lock_note: str  # a text key
    last_denial: GateVerdict | None  # what the Override button lets in
    colours: Palette

    async def opened(self) -> None: ...

    def screen_of(self, kind: type[S]) -> S | None: ...

    def forget_screens(self, *screens: Screen) -> None: ...

    async def show(self, screen: Screen) -> None: ...

    async def show_verdict(self, verdict: GateVerdict) -> None: ...

    async def keep_focus(self) -> None: ...

    def show_gate(self) -> None: ...

    async def read_status(self) -> None: ...

    async def refresh(self) -> None: ...

    def draw_status(self, *, syncing: bool = False) -> Any: ...
