"""The views as control trees: built from real `scanner_app.state` values, handlers driven
directly, callbacks recorded. No browser, no gate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import flet as ft

from scanner_app.state import (
    AttendeeSummary,
    CheckpointChoice,
    EventChoice,
    GateConfig,
    GateStats,
    GateVerdict,
    OutboxItem,
    SyncStatus,
)
from scanner_app.ui import viewmodel as vm
from scanner_app.ui.i18n import Lang, texts
from scanner_app.ui.navigation import Screen
from scanner_app.ui.theme import palette
from scanner_app.ui.views.activity import ActivityActions, ActivityScreen
from scanner_app.ui.views.admin import AdminActions, AdminScreen
from scanner_app.ui.views.frame import AppFrame, FrameActions
from scanner_app.ui.views.pairing import PairActions, PairScreen, SetupActions, SetupScreen
from scanner_app.ui.views.scan import ScanActions, ScanScreen
from scanner_app.ui.views.search import SearchActions, SearchScreen
from scanner_app.ui.views.status import status_bar
from scanner_app.ui.views.verdict import verdict_view
from scanner_app.ui.views.walkin import WalkinActions, WalkinScreen

EN, ES = texts("en"), texts("es")
DARK = palette()
NOW = datetime.now(UTC)

ANA = AttendeeSummary(
    "att_ana", "Ana", "Ruiz", "ana@example.com", "vip", "VIP", ("press",), is_vip=True
)
BO = AttendeeSummary("att_bo", "Bo", "Lee", None, "general", "General", inside=True)


# --- walking control trees --------------------------------------------------------------------

_CHILDREN = ("content", "controls", "title", "subtitle", "leading", "trailing", "segments")


def walk(node: Any) -> Iterator[Any]:
    if isinstance(node, list | tuple):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ft.BaseControl):
        return
    yield node
    for attr in _CHILDREN:
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str):
            yield from walk(child)


def visible(node: Any) -> Iterator[Any]:
    """Like `walk`, without the subtrees of hidden controls."""
    if isinstance(node, list | tuple):
        for item in node:
            yield from visible(item)
        return
    if not isinstance(node, ft.BaseControl) or getattr(node, "visible", True) is False:
        return
    yield node
    for attr in _CHILDREN:
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str):
            yield from visible(child)


def shown_texts(root: Any) -> list[str]:
    return [n.value for n in visible(root) if isinstance(n, ft.Text) and n.value]


def identifiers(root: Any) -> set[str]:
    return {n.identifier for n in walk(root) if isinstance(n, ft.Semantics) and n.identifier}


def semantics(root: Any, identifier: str) -> ft.Semantics:
    found = [n for n in walk(root) if isinstance(n, ft.Semantics) and n.identifier == identifier]
    assert len(found) == 1, identifier
    return found[0]


def buttons(root: Any) -> dict[str, ft.Button]:
    return {
        b.content: b
        for b in visible(root)
        if isinstance(b, ft.Button) and isinstance(b.content, str)
    }


def run(handler: Callable[..., Any], *args: Any) -> None:
    result = handler(*args)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


class Recorder:
    """Stands in for the app: every callback records its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def verdict(status: str = "accepted", reason: str = "ok", **extra: Any) -> GateVerdict:
    fields: dict[str, Any] = {
        "id": "r1",
        "code": "DC1ABC",
        "status": status,
        "reason": reason,
        "message": "",
        "warnings": (),
        "attendee": ANA,
        "offline": False,
        "scanned_at": NOW,
        "direction": "in",
    }
    fields.update(extra)
    return GateVerdict(**fields)


# --- verdict overlay --------------------------------------------------------------------------


def test_verdict_screen_admit_is_green_with_word_name_ticket_and_vip() -> None:
    view = verdict_view(vm.verdict_look(verdict(), EN), DARK, EN)
    assert view.identifier == "verdict"
    assert view.label is not None and "ADMIT" in view.label and "Ana Ruiz" in view.label
    box = view.content
    assert isinstance(box, ft.Container) and box.bgcolor == DARK.admit
    texts_shown = shown_texts(view)
    assert "ADMIT" in texts_shown and "Ana Ruiz" in texts_shown
    assert {"VIP", "Welcome"} <= set(texts_shown)
    assert texts_shown.count("VIP") == 1  # the ticket type already says VIP: one badge
    icons = [n.icon for n in walk(view) if isinstance(n, ft.Icon)]
    assert ft.Icons.CHECK_CIRCLE in icons


def test_verdict_screen_denial_is_red_with_the_reason() -> None:
    v = verdict(
        "denied",
        "already_inside",
        inside_since=datetime(2026, 5, 15, 21, 14).astimezone(),
        inside_via="Gate B",
        offline=True,
    )
    view = verdict_view(vm.verdict_look(v, EN), DARK, EN)
    assert isinstance(view.content, ft.Container) and view.content.bgcolor == DARK.deny
    shown = shown_texts(view)
    assert "DENIED" in shown
    assert "Already inside since 21:14 via Gate B" in shown
    assert "decided offline" in shown
    assert ft.Icons.CANCEL in [n.icon for n in walk(view) if isinstance(n, ft.Icon)]


def test_verdict_screen_warning_is_amber_and_spanish() -> None:
    view = verdict_view(vm.verdict_look(verdict("denied", "duplicate_scan"), ES), DARK, ES)
    assert isinstance(view.content, ft.Container) and view.content.bgcolor == DARK.warn
    assert {"REVISAR", "Recién escaneada", "Toque para cerrar"} <= set(shown_texts(view))


def test_tapping_the_verdict_dismisses_it() -> None:
    rec = Recorder()
    view = verdict_view(vm.verdict_look(verdict(), EN), DARK, EN, rec.dismiss)
    assert isinstance(view.content, ft.Container)
    run(view.content.on_click)
    assert rec.calls == [("dismiss", ())]


# --- status bar -------------------------------------------------------------------------------


def _status(**fields: Any) -> SyncStatus:
    base: dict[str, Any] = {
        "paired": True,
        "online": True,
        "offline_since": None,
        "pending": 0,
        "last_sync": NOW - timedelta(seconds=30),
        "last_error": None,
    }
    base.update(fields)
    return SyncStatus(**base)


STATS = GateStats("Main hall", occupancy=40, capacity=400, entries_today=52, exits_today=12)


def test_status_bar_offline_shows_the_badge_and_pending_uploads() -> None:
    since = NOW - timedelta(minutes=5)
    look = vm.status_look(_status(online=False, offline_since=since, pending=3), STATS, NOW, EN)
    bar = status_bar(look, DARK, EN)
    assert bar.identifier == "status"
    badge = semantics(bar, "offline-badge")
    assert badge.label == f"Offline since {vm.clock(since)}"
    shown = shown_texts(bar)
    assert "3 to upload" in shown
    assert "Main hall: 40 / 400" in shown
    assert "In today: 52 · Out today: 12" in shown
    bars = [n for n in walk(bar) if isinstance(n, ft.ProgressBar)]
    assert len(bars) == 1 and bars[0].value == 0.1


def test_status_bar_online_has_no_offline_badge() -> None:
    bar = status_bar(vm.status_look(_status(), None, NOW, EN), DARK, EN)
    assert "offline-badge" not in identifiers(bar)
    assert {"Online", "All uploaded", "Synced 30 s ago"} <= set(shown_texts(bar))


def test_status_bar_in_spanish() -> None:
    look = vm.status_look(_status(online=False, pending=2), STATS, NOW, ES)
    shown = shown_texts(status_bar(look, DARK, ES))
    assert {"Sin conexión", "2 por subir", "Entradas hoy: 52 · Salidas hoy: 12"} <= set(shown)


# --- scan screen ------------------------------------------------------------------------------


def _scan(rec: Recorder, **kw: Any) -> ScanScreen:
    actions = ScanActions(rec.submit, rec.set_direction, rec.keep_focus, rec.override)
    return ScanScreen(EN, DARK, actions, has_camera=kw.get("camera", False))


def test_scan_screen_sends_the_typed_code_and_clears_the_field() -> None:
    rec = Recorder()
    scan = _scan(rec)
    assert {"screen-scan", "code-input"} <= identifiers(scan.root)
    scan.code.value = "  DC1ABCDEF \n"
    run(scan.code.on_submit)
    assert rec.calls == [("submit", ("DC1ABCDEF",))]
    assert scan.code.value == ""
    run(scan.code.on_submit)  # nothing typed: nothing sent
    assert len(rec.calls) == 1


def test_scan_screen_keeps_focus_for_handheld_scanners() -> None:
    rec = Recorder()
    scan = _scan(rec)
    assert scan.code.autofocus
    run(scan.code.on_blur)
    assert rec.calls == [("keep_focus", ())]


def test_scan_screen_direction_toggle_only_at_both_gates() -> None:
    rec = Recorder()
    scan = _scan(rec)
    scan.show_gate("Main entrance", "in", ("in", "out"))
    assert scan.direction.visible and scan.gate_text.value == "Main entrance · In"
    scan.direction.selected = ["out"]
    run(scan.direction.on_change)
    assert rec.calls == [("set_direction", ("out",))]
    scan.show_gate("Exit", "out", ("out",))
    assert not scan.direction.visible


def test_scan_screen_without_camera_says_so_and_with_camera_has_a_preview() -> None:
    rec = Recorder()
    assert EN("scan.no_camera") in shown_texts(_scan(rec).root)
    with_camera = _scan(rec, camera=True)
    assert EN("scan.no_camera") not in shown_texts(with_camera.root)
    assert any(n is with_camera.preview for n in walk(with_camera.root))
    with_camera.show_camera_problem("no such file")
    assert "The camera stopped: no such file" in shown_texts(with_camera.root)


# --- pairing and setup ------------------------------------------------------------------------


def test_pair_screen_pairs_with_a_link_pasted_anywhere() -> None:
    rec = Recorder()
    pair = PairScreen(EN, DARK, PairActions(rec.pair, rec.pair_uri))
    assert "screen-pair" in identifiers(pair.root)
    pair.code.value = "doorcheck://pair?server=http://10.0.0.5:8000&code=ABCD"
    run(buttons(pair.root)["Pair"].on_click)
    assert rec.calls == [
        ("pair_uri", ("doorcheck://pair?server=http://10.0.0.5:8000&code=ABCD", "Scanner"))
    ]


def test_pair_screen_with_server_and_code_or_an_error() -> None:
    rec = Recorder()
    pair = PairScreen(EN, DARK, PairActions(rec.pair, rec.pair_uri))
    run(pair.submit)
    assert rec.calls == [] and pair.message.value == EN("pair.missing")
    pair.server.value, pair.code.value, pair.name.value = "http://gate:8000", "K7Q2", "Door 1"
    run(pair.submit)
    assert rec.calls == [("pair", ("http://gate:8000", "K7Q2", "Door 1"))]
    assert pair.button.disabled
    pair.show_error("this enrolment code is unknown, used or expired")
    assert not pair.button.disabled
    assert "this enrolment code is unknown, used or expired" in shown_texts(pair.root)


def test_pair_screen_tells_a_revoked_device_why() -> None:
    rec = Recorder()
    pair = PairScreen(ES, DARK, PairActions(rec.pair, rec.pair_uri), revoked=True)
    assert ES("pair.revoked") in shown_texts(pair.root)


EVENTS = [
    EventChoice(
        "evt_1",
        "Summer Fest",
        (
            CheckpointChoice("cp_old", "Old door", "in", None, False),
            CheckpointChoice("cp_main", "Main entrance", "both", "zone_1", True),
            CheckpointChoice("cp_exit", "Exit", "out", "zone_1", True),
        ),
        (("general", "General"), ("vip", "VIP")),
    ),
    EventChoice("evt_2", "Winter Fest"),
]


def test_setup_screen_picks_the_first_active_checkpoint_and_configures() -> None:
    rec = Recorder()
    setup = SetupScreen(EN, DARK, SetupActions(rec.configure, rec.refresh), EVENTS)
    assert "screen-setup" in identifiers(setup.root)
    assert (setup.event.value, setup.checkpoint.value) == ("evt_1", "cp_main")
    assert [o.text for o in setup.checkpoint.options] == [
        "Old door (inactive)",
        "Main entrance",
        "Exit",
    ]
    setup.direction.selected = ["out"]
    setup.operator.value = " Lu "
    run(buttons(setup.root)["Start scanning"].on_click)
    assert rec.calls == [("configure", ("evt_1", "cp_main", "out", "Lu"))]


def test_setup_screen_fixes_the_direction_of_a_one_way_gate() -> None:
    rec = Recorder()
    setup = SetupScreen(EN, DARK, SetupActions(rec.configure, rec.refresh), EVENTS)
    setup.checkpoint.value = "cp_exit"
    run(setup.checkpoint.on_select)
    assert setup.direction.selected == ["out"] and setup.direction.disabled


def test_setup_screen_restores_the_current_gate_and_handles_no_events() -> None:
    rec = Recorder()
    current = GateConfig("evt_1", "cp_exit", "out", "Lu")
    setup = SetupScreen(EN, DARK, SetupActions(rec.configure, rec.refresh), EVENTS, current)
    assert (setup.checkpoint.value, setup.operator.value) == ("cp_exit", "Lu")
    empty = SetupScreen(ES, DARK, SetupActions(rec.configure, rec.refresh), [])
    assert ES("setup.no_events") in shown_texts(empty.root)
    run(empty.submit)
    assert rec.calls == [] and empty.message.value == ES("setup.pick")
    run(buttons(empty.root)["Sincronizar ahora"].on_click)
    assert rec.calls == [("refresh", ())]


# --- search -----------------------------------------------------------------------------------


def test_search_asks_after_two_letters_and_lists_people() -> None:
    rec = Recorder()
    search = SearchScreen(EN, DARK, SearchActions(rec.search, rec.open, rec.check))
    assert "screen-search" in identifiers(search.root)
    search.query.value = "a"
    run(search.query.on_change)
    assert rec.calls == []
    search.query.value = "an"
    run(search.query.on_change)
    assert rec.calls == [("search", ("an",))]
    search.show_results([ANA, BO])
    shown = shown_texts(search.root)
    assert {"Ana Ruiz", "Bo Lee", "General · Inside"} <= set(shown)
    tiles = [n for n in visible(search.root) if isinstance(n, ft.ListTile)]
    run(tiles[1].on_click)
    assert rec.calls[-1] == ("open", ("att_bo",))
    search.show_results([])
    assert EN("search.empty") in shown_texts(search.root)


def test_attendee_detail_checks_in_and_out_by_hand() -> None:
    rec = Recorder()
    search = SearchScreen(ES, DARK, SearchActions(rec.search, rec.open, rec.check))
    search.show_attendee(ANA)
    shown = shown_texts(search.root)
    assert {"Ana Ruiz", "VIP", "ana@example.com", "press", "Fuera"} <= set(shown)
    found = buttons(search.root)
    run(found["Registrar entrada"].on_click)
    run(found["Registrar salida"].on_click)
    assert rec.calls == [("check", ("att_ana", "in")), ("check", ("att_ana", "out"))]
    run(found["Volver a los resultados"].on_click)
    assert not search.detail.visible


# --- walk-in ----------------------------------------------------------------------------------


def _walkin(rec: Recorder, t: Any = EN) -> WalkinScreen:
    return WalkinScreen(t, DARK, WalkinActions(rec.register), (("general", "General"),))


def test_walkin_sends_the_form_with_parsed_tags() -> None:
    rec = Recorder()
    form = _walkin(rec)
    assert "screen-walkin" in identifiers(form.root)
    form.first_name.value, form.last_name.value = " Eva ", "Soto"
    form.email.value, form.tags.value = "eva@example.com", "press, crew,"
    run(buttons(form.root)["Register and admit"].on_click)
    assert rec.calls == [
        ("register", ("Eva", "Soto", "eva@example.com", "general", ["press", "crew"]))
    ]


def test_walkin_shows_inline_errors_under_each_field() -> None:
    rec = Recorder()
    form = _walkin(rec, ES)
    run(form.submit)
    form.show_errors({"first_name": "Obligatorio", "email": "No es un email válido"})
    assert form.first_name.error == "Obligatorio"
    assert form.email.error == "No es un email válido"
    assert form.last_name.error is None
    assert form.message.visible and form.message.value == ES("walkin.fix")
    assert not form.button.disabled
    form.show_errors({"device": "this device was revoked"})
    assert form.message.value == "this device was revoked"
    form.reset()
    assert form.first_name.error is None and not form.message.visible
    assert form.first_name.value == ""


# --- activity ---------------------------------------------------------------------------------


def test_activity_lists_readings_with_offline_marks_and_the_queue() -> None:
    rec = Recorder()
    screen = ActivityScreen(EN, DARK, ActivityActions(rec.sync_now))
    status = _status(
        online=False,
        pending=1,
        last_error="cannot reach http://10.0.0.5:8000: ConnectError",
        problem="unreachable",
    )
    readings = [
        verdict(offline=True),
        verdict("denied", "unknown_code", attendee=None, code="NOPE", id="r2"),
    ]
    queue = [
        OutboxItem(
            "r1",
            "scan",
            "Ana Ruiz",
            NOW - timedelta(minutes=3),
            2,
            "http://10.0.0.5:8000 did not answer in time",
            "in",
            "accepted",
            "timeout",
        )
    ]
    look = vm.status_look(status, None, NOW, EN)
    screen.show(status, look, readings, queue, NOW)
    shown = shown_texts(screen.root)
    assert "screen-activity" in identifiers(screen.root)
    assert "ADMIT · Ana Ruiz" in shown and "DENIED · NOPE" in shown
    assert any("offline" in s for s in shown if s.startswith(vm.clock(NOW)))
    assert "Scan: Ana Ruiz" in shown
    assert f"In · accepted · 3 min ago · 2 tries · {EN('problem.timeout')}" in shown
    assert f"Last problem: {EN('problem.unreachable')}" in shown
    run(buttons(screen.root)["Sync now"].on_click)
    assert rec.calls == [("sync_now", ())]


def test_activity_queue_in_spanish() -> None:
    screen = ActivityScreen(ES, DARK, ActivityActions(Recorder().sync_now))
    status = _status(pending=1)
    queue = [OutboxItem("r1", "scan", "Ana Ruiz", NOW, 0, None, "out", "denied")]
    screen.show(status, vm.status_look(status, None, NOW, ES), [], queue, NOW)
    shown = shown_texts(screen.root)
    assert "Lectura: Ana Ruiz" in shown
    assert any(s.startswith(f"{ES('direction.out')} · denegada · ") for s in shown), shown


def test_activity_empty_lists() -> None:
    screen = ActivityScreen(ES, DARK, ActivityActions(Recorder().sync_now))
    status = _status()
    screen.show(status, vm.status_look(status, None, NOW, ES), [], [], NOW)
    assert {"Aún no hay lecturas", "Todo está subido"} <= set(shown_texts(screen.root))


# --- admin ------------------------------------------------------------------------------------


def test_admin_needs_a_key_then_lists_and_resolves_conflicts() -> None:
    rec = Recorder()
    admin = AdminScreen(EN, DARK, AdminActions(rec.load, rec.resolve))
    assert "screen-admin" in identifiers(admin.root)
    run(admin.load)
    assert rec.calls == [] and admin.message.value == EN("admin.need_key")
    admin.api_key.value = "dk_live_x"
    run(buttons(admin.root)["Load conflicts"].on_click)
    assert rec.calls == [("load", ("dk_live_x",))]
    admin.show_conflicts(
        [
            {
                "id": "cfl_1",
                "kind": "already_inside",
                "created_at": "2026-05-15T21:20:00Z",
                "scan_ids": ["s1", "s2"],
                "details": {"server_reason": "already_inside", "device_id": "dev_1"},
            },
            {"id": "cfl_2", "kind": "duplicate_registration", "created_at": "2026-05-15"},
        ]
    )
    shown = shown_texts(admin.root)
    assert "Admitted while already inside" in shown
    assert "2026-05-15 21:20 · 2 readings · Already inside" in shown
    admin.notes["cfl_1"].value = "seen on camera"
    found = [b for b in visible(admin.root) if isinstance(b, ft.Button)]
    void = next(b for b in found if b.key == "void_scan-cfl_1")
    run(void.on_click)
    assert rec.calls[-1] == ("resolve", ("cfl_1", "void_scan", "seen on camera"))
    assert any(b.key == "merge-cfl_2" for b in found)
    admin.show_conflicts([])
    assert admin.message.value == EN("admin.empty")


# --- the frame around the screens ---------------------------------------------------------------


def test_frame_navigation_bar_status_bar_and_overlay() -> None:
    rec = Recorder()
    actions = FrameActions(rec.language, rec.contrast, rec.change_gate, rec.navigate)
    frame = AppFrame(ES, Lang.ES, DARK, actions)
    labels = [d.label for d in frame.nav.destinations]
    assert labels == ["Escanear", "Buscar", "En puerta", "Actividad", "Admin"]
    assert frame.language.content == "English"  # the button offers the other language
    frame.show(Screen.PAIR, ft.Text("pairing"))
    assert not frame.nav.visible and not frame.status_holder.visible
    assert not frame.change_gate.visible
    frame.show(Screen.WALKIN, ft.Text("walk-in"))
    assert frame.nav.visible and frame.nav.selected_index == 2 and frame.status_holder.visible
    frame.nav.selected_index = 3
    run(frame.nav.on_change)
    assert rec.calls == [("navigate", (Screen.ACTIVITY,))]
    frame.show_overlay(ft.Text("verdict"))
    assert frame.overlay_shown
    frame.show_overlay(None)
    assert not frame.overlay_shown


# --- supervisor override ----------------------------------------------------------------------


def test_the_override_dialog_asks_reason_note_and_pin_and_forwards_them() -> None:
    from scanner_app.ui.views.override import OverrideActions, OverrideDialog

    rec = Recorder()
    dialog = OverrideDialog(EN, DARK, OverrideActions(rec.submit, rec.cancel), "Ana Ruiz", "why")
    assert [o.key for o in dialog.reason.options] == [
        "vip", "staff_decision", "ticket_problem", "other",
    ]  # fmt: skip
    assert dialog.pin.password and dialog.note.max_length == 500
    dialog.reason.value, dialog.note.value, dialog.pin.value = "vip", "sponsor", "2468"
    run(dialog.submit)
    assert rec.calls == [("submit", ("vip", "sponsor", "2468"))]
    assert dialog.confirm.disabled  # until the gate answers
    dialog.show_error("Wrong override PIN.", "pin")
    assert dialog.note.value == "sponsor" and not dialog.confirm.disabled
    texts = shown_texts(dialog.dialog)
    assert "Wrong override PIN." in texts and "Ana Ruiz" in texts


def test_the_override_dialog_in_spanish() -> None:
    from scanner_app.ui.views.override import OverrideActions, OverrideDialog

    rec = Recorder()
    dialog = OverrideDialog(ES, DARK, OverrideActions(rec.submit, rec.cancel), "Ana", "why")
    assert "Autorización del supervisor" in shown_texts(dialog.dialog)
    assert dialog.reason.options[0].text == "VIP o invitado de la organización"


def test_out_mode_is_unmistakable() -> None:
    rec = Recorder()
    scan = _scan(rec)
    scan.show_gate("Gate A", "in", ("in", "out"))
    assert not scan.out_band.visible
    scan.show_gate("Gate A", "out", ("in", "out"))
    assert scan.out_band.visible and "out-mode" in identifiers(scan.root)
    assert scan.frame.border is not None
    es = ScanScreen(ES, DARK, ScanActions(rec.submit, rec.d, rec.k, rec.o), has_camera=False)
    es.show_gate("Puerta A", "out", ("in", "out"))
    assert "MODO SALIDA: salen asistentes" in shown_texts(es.root)
