"""Driving the Flet web app from Playwright, shared by the end-to-end test and bench_ui."""

from __future__ import annotations

from typing import Any

_FIELD_HOLDS = "text => document.activeElement !== null && document.activeElement.value === text"


def type_into(
    page: Any, name: Any, text: str, *, enter: bool = False, wait_ms: int = 60_000
) -> None:
    """Focus the text field labelled `name` and type `text` key by key, as a person or a
    handheld scanner does (setting the DOM input's value does not reach Flutter's editing state).

    Flutter attaches its editing state to the field a moment after the focus, and keys that
    arrive first are lost (a pairing link once arrived without its first letter); its editing
    state is mirrored in the focused <input>, so what was typed is checked there and, like a
    person who sees a letter missing, typed once more over the whole field."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.get_by_role("textbox", name=name).click()
    page.keyboard.type(text)
    try:
        page.wait_for_function(_FIELD_HOLDS, arg=text, timeout=2000)
    except PlaywrightTimeout:
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.type(text)
        page.wait_for_function(_FIELD_HOLDS, arg=text, timeout=wait_ms)
    if enter:
        page.keyboard.press("Enter")
