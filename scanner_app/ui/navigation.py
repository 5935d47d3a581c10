"""Where the app goes: its screens, the navigation bar's order, keyboard shortcuts (plain letters
and digits always reach the code field: a handheld scanner types them) and the start screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from scanner_app.state import GateConfig
from scanner_app.ui.i18n import Lang

__all__ = [
    "NAV_SCREENS",
    "SCREEN_OF_ACTION",
    "Action",
    "Screen",
    "other_lang",
    "shortcut",
    "start_screen",
]


class Screen(StrEnum):
    LOCK = "lock"  # the door PIN
    PAIR = "pair"
    SETUP = "setup"
    SCAN = "scan"
    SEARCH = "search"
    WALKIN = "walkin"
    ACTIVITY = "activity"
    ADMIN = "admin"


# The screens reachable from the navigation bar, in its order.
NAV_SCREENS: tuple[Screen, ...] = (
    Screen.SCAN,
    Screen.SEARCH,
    Screen.WALKIN,
    Screen.ACTIVITY,
    Screen.ADMIN,
)


class Action(StrEnum):
    """What a keyboard shortcut asks for (desk use)."""

    GO_SCAN = "go_scan"
    GO_SEARCH = "go_search"
    GO_WALKIN = "go_walkin"
    GO_ACTIVITY = "go_activity"
    GO_ADMIN = "go_admin"
    TOGGLE_DIRECTION = "toggle_direction"
    TOGGLE_LANGUAGE = "toggle_language"
    SYNC_NOW = "sync_now"
    OVERRIDE = "override"  # the supervisor override of the last denial
    DISMISS = "dismiss"


# The screen each navigation shortcut opens.
SCREEN_OF_ACTION: Mapping[Action, Screen] = {
    Action.GO_SCAN: Screen.SCAN,
    Action.GO_SEARCH: Screen.SEARCH,
    Action.GO_WALKIN: Screen.WALKIN,
    Action.GO_ACTIVITY: Screen.ACTIVITY,
    Action.GO_ADMIN: Screen.ADMIN,
}

_FUNCTION_KEYS: Mapping[str, Action] = {
    "F2": Action.GO_SCAN,
    "F3": Action.GO_SEARCH,
    "F4": Action.GO_WALKIN,
    "F5": Action.GO_ACTIVITY,
    "F6": Action.GO_ADMIN,
    "F7": Action.TOGGLE_DIRECTION,
    "F8": Action.TOGGLE_LANGUAGE,
    "F9": Action.SYNC_NOW,
    "F10": Action.OVERRIDE,
    "Escape": Action.DISMISS,
}
_ALT_DIGITS: Mapping[str, Action] = {
    "1": Action.GO_SCAN,
    "2": Action.GO_SEARCH,
    "3": Action.GO_WALKIN,
    "4": Action.GO_ACTIVITY,
    "5": Action.GO_ADMIN,
}


def shortcut(
    key: str, *, ctrl: bool = False, alt: bool = False, shift: bool = False
) -> Action | None:
    """The action of a key press, or None: plain letters and digits always reach the code field,
    because a handheld scanner types them.

    >>> shortcut("F3")
    <Action.GO_SEARCH: 'go_search'>
    >>> shortcut("A") is None
    True
    """
    if alt and not ctrl and key in _ALT_DIGITS:
        return _ALT_DIGITS[key]
    if ctrl or alt or shift:
        return None
    return _FUNCTION_KEYS.get(key)


def start_screen(*, paired: bool, revoked: bool, config: GateConfig | None) -> Screen:
    """Where the app opens: pair first, then choose a gate, then scan."""
    if not paired or revoked:
        return Screen.PAIR
    if config is None:
        return Screen.SETUP
    return Screen.SCAN


def other_lang(lang: Lang) -> Lang:
    return Lang.ES if lang is Lang.EN else Lang.EN
