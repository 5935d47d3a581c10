"""Recent readings (with offline marks), the upload queue, sync now, errors in plain words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import flet as ft

from scanner_app.state import GateVerdict, OutboxItem, SyncStatus
from scanner_app.ui.forms import problem_text
from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, TONE_ICONS, Palette
from scanner_app.ui.viewmodel import StatusLook, clock, relative_time, verdict_look
from scanner_app.ui.views.common import Callback, big_button, call, screen_root

__all__ = ["ActivityActions", "ActivityScreen"]


@dataclass(frozen=True, slots=True)
class ActivityActions:
    sync_now: Callback  # () -> None


class ActivityScreen:
    def __init__(self, t: Texts, colours: Palette, actions: ActivityActions) -> None:
        self.t = t
        self.colours = colours
        self.actions = actions
        self.summary = ft.Column(controls=[], spacing=6, key="sync-summary")
        self.sync_button = big_button(t("activity.sync_now"), self.sync_now, icon=ft.Icons.SYNC)
        self.readings = ft.Column(controls=[], spacing=2, key="readings")
        self.queue = ft.Column(controls=[], spacing=2, key="queue")
        self.root = screen_root(
            "screen-activity",
            ft.Text(t("activity.title"), size=32, weight=ft.FontWeight.BOLD),
            self.summary,
            self.sync_button,
            ft.Text(t("activity.outbox"), size=24, weight=ft.FontWeight.BOLD),
            self.queue,
            ft.Text(t("activity.recent"), size=24, weight=ft.FontWeight.BOLD),
            self.readings,
        )

    async def sync_now(self) -> None:
        await call(self.actions.sync_now)

    def show(
        self,
        status: SyncStatus,
        look: StatusLook,
        recent: Sequence[GateVerdict],
        outbox: Sequence[OutboxItem],
        now: datetime,
    ) -> None:
        t = self.t
        lines: list[ft.Control] = [
            ft.Text(f"{look.connection} · {look.pending_text} · {look.last_sync}", size=18),
            ft.Text(t("activity.cached", n=status.attendees_cached), color=self.colours.muted),
        ]
        if status.server_url:
            lines.append(
                ft.Text(t("activity.server", url=status.server_url), color=self.colours.muted)
            )
        if look.problem:
            lines.append(
                ft.Text(
                    t("activity.problem", error=look.problem),
                    color=self.colours.warn,
                    size=18,
                    key="sync-problem",
                )
            )
        self.summary.controls = lines
        self.sync_button.disabled = status.revoked
        self.queue.controls = [self._outbox_row(item, now) for item in outbox] or [
            ft.Text(t("activity.outbox_empty"), color=self.colours.muted)
        ]
        self.readings.controls = [self._reading_row(v) for v in recent] or [
            ft.Text(t("activity.no_readings"), color=self.colours.muted)
        ]

    def _reading_row(self, verdict: GateVerdict) -> ft.ListTile:
        t = self.t
        look = verdict_look(verdict, t)
        colour = self.colours.tone(look.tone)
        extra = [clock(verdict.scanned_at), t(f"direction.{verdict.direction}")]
        if verdict.offline:
            extra.append(t("activity.offline_mark"))
        if verdict.manual:
            extra.append(t("verdict.manual"))
        trailing = (
            ft.Icon(ft.Icons.CLOUD_OFF, color=self.colours.warn, tooltip=t("activity.offline_mark"))
            if verdict.offline
            else None
        )
        return ft.ListTile(
            leading=ft.Icon(TONE_ICONS[look.tone], color=colour, size=32),
            title=ft.Text(
                f"{look.word} · {verdict.attendee.name if verdict.attendee else verdict.code[:24]}",
                size=FIELD_TEXT,
                color=colour,
                weight=ft.FontWeight.BOLD,
            ),
            subtitle=ft.Text(f"{' · '.join(extra)} — {look.reason}", size=16),
            trailing=trailing,
            data=verdict.id,
        )

    def _outbox_row(self, item: OutboxItem, now: datetime) -> ft.ListTile:
        t = self.t
        kind = t(f"activity.kind.{item.kind}")
        details = [relative_time(item.created_at, now, t), t("activity.attempts", n=item.attempts)]
        if item.direction:
            details.insert(0, t(f"direction.{item.direction}"))
        if item.status:
            details.insert(1 if item.direction else 0, t(f"activity.status.{item.status}"))
        if item.last_error:
            details.append(problem_text(item.problem, item.last_error, t))
        return ft.ListTile(
            leading=ft.Icon(ft.Icons.CLOUD_UPLOAD, color=self.colours.warn),
            title=ft.Text(f"{kind}: {item.summary}", size=18),
            subtitle=ft.Text(" · ".join(details), size=15),
            data=item.id,
        )
