"""The scan screen: camera preview with a scan frame, the code field, the gate and direction."""

from __future__ import annotations

from dataclasses import dataclass

import flet as ft

from scanner_app.ui.i18n import Texts
from scanner_app.ui.theme import FIELD_TEXT, OUT_MODE, TOUCH, Palette
from scanner_app.ui.views.common import Callback, big_button, call, screen_root, text_field

__all__ = ["ScanActions", "ScanScreen"]


@dataclass(frozen=True, slots=True)
class ScanActions:
    submit: Callback  # (text) -> None: a code typed, or sent by a handheld scanner + Enter
    set_direction: Callback  # ("in" | "out") -> None
    keep_focus: Callback  # () -> None: the code field lost focus
    override: Callback  # () -> None: the supervisor override of the last denial


class ScanScreen:
    """Keeps its controls across updates: the preview streams into `preview`, and the code
    field keeps focus for handheld scanners that type like a keyboard."""

    def __init__(
        self, t: Texts, colours: Palette, actions: ScanActions, *, has_camera: bool
    ) -> None:
        self.t = t
        self.actions = actions
        self.preview = ft.RawImage(fit=ft.BoxFit.COVER, expand=True, key="preview")
        self.camera_note = ft.Text(
            t("scan.no_camera"), size=FIELD_TEXT, color=colours.muted, visible=not has_camera
        )
        frame = ft.Container(
            width=260,
            height=260,
            border=ft.Border.all(4, colours.accent),
            border_radius=ft.BorderRadius.all(24),
            key="scan-frame",
        )
        camera = ft.Stack(
            controls=[
                ft.Container(
                    content=self.preview if has_camera else None,
                    bgcolor="#000000",
                    expand=True,
                    left=0,
                    top=0,
                    right=0,
                    bottom=0,
                ),
                ft.Container(
                    content=ft.Column(
                        controls=[frame, self.camera_note],
                        horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                        alignment=ft.MainAxisAlignment.CENTER,
                    ),
                    alignment=ft.Alignment.CENTER,
                    left=0,
                    top=0,
                    right=0,
                    bottom=0,
                ),
            ],
            expand=True,
        )
        self.gate_text = ft.Text("", size=FIELD_TEXT, weight=ft.FontWeight.BOLD)
        self.direction = ft.SegmentedButton(
            segments=[
                ft.Segment(value="in", label=t("direction.in"), icon=ft.Icons.LOGIN),
                ft.Segment(value="out", label=t("direction.out"), icon=ft.Icons.LOGOUT),
            ],
            selected=["in"],
            allow_empty_selection=False,
            allow_multiple_selection=False,
            on_change=self._direction_changed,
            visible=False,
            key="direction",
        )
        self.code = text_field(
            t("scan.code_label"),
            hint_text=t("scan.code_hint"),
            autofocus=True,
            expand=True,
            autocorrect=False,
            enable_suggestions=False,
            on_submit=self.submit,
            on_blur=self._blurred,
            key="code",
        )
        # Out mode is unmistakable: a band over the screen and the scan frame in its colour
        self.out_band = ft.Semantics(
            identifier="out-mode",
            label=t("scan.out_mode"),
            content=ft.Container(
                content=ft.Row(
                    controls=[
                        ft.Icon(ft.Icons.LOGOUT, color="#FFFFFF", size=32),
                        ft.Text(
                            t("scan.out_mode"),
                            size=22,
                            weight=ft.FontWeight.BOLD,
                            color="#FFFFFF",
                        ),
                    ],
                    alignment=ft.MainAxisAlignment.CENTER,
                ),
                bgcolor=OUT_MODE,
                padding=ft.Padding.symmetric(horizontal=16, vertical=10),
                border_radius=ft.BorderRadius.all(12),
            ),
            visible=False,
        )
        self.frame = frame
        self.accent = colours.accent
        self.root = screen_root(
            "screen-scan",
            self.out_band,
            ft.Row(
                controls=[self.gate_text, self.direction],
                alignment=ft.MainAxisAlignment.SPACE_BETWEEN,
                wrap=True,
            ),
            camera,
            ft.Row(
                controls=[
                    ft.Semantics(
                        identifier="code-input",
                        content=self.code,
                        expand=True,
                        textfield=True,
                    ),
                    big_button(t("scan.check"), self.submit, icon=ft.Icons.QR_CODE_SCANNER),
                    big_button(
                        t("override.button"),
                        self._override,
                        icon=ft.Icons.VERIFIED_USER,
                        primary=False,
                        key="override-button",
                    ),
                ],
                height=TOUCH + 16,
            ),
            scroll=False,
        )

    def show_gate(self, checkpoint: str, direction: str, directions: tuple[str, ...]) -> None:
        """The gate's name and direction; the in/out toggle only where both are allowed."""
        self.gate_text.value = self.t(
            "scan.gate", checkpoint=checkpoint, direction=self.t(f"direction.{direction}")
        )
        self.direction.selected = [direction]
        self.direction.visible = len(directions) > 1
        out = direction == "out"
        self.out_band.visible = out
        self.frame.border = ft.Border.all(8 if out else 4, OUT_MODE if out else self.accent)

    def show_camera_problem(self, message: str | None) -> None:
        if message:
            self.camera_note.value = self.t("scan.camera_stopped", error=message)
        self.camera_note.visible = bool(message)

    async def submit(self) -> None:
        text = (self.code.value or "").strip()
        self.code.value = ""
        if text:
            await call(self.actions.submit, text)

    async def _override(self) -> None:
        await call(self.actions.override)

    async def _direction_changed(self) -> None:
        if self.direction.selected:
            await call(self.actions.set_direction, self.direction.selected[0])

    async def _blurred(self) -> None:
        await call(self.actions.keep_focus)

    async def focus(self) -> None:
        await self.code.focus()  # type: ignore[no-untyped-call]
