"""Where the scanner app opens: a desktop window when the machine has a display, the browser
otherwise, on a port nobody else holds. (Flet, asked for a window on a Linux machine without a
display, silently serves the web app on port 8000 instead: the demo's own server's port.)
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_WEB_PORT", "Placement", "PortTaken", "has_display", "place", "port_free"]

DEFAULT_WEB_PORT = 8550


class PortTaken(Exception):
    """The port asked for is held by another program."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is taken (another program listens there): choose another")
        self.port = port


@dataclass(frozen=True)
class Placement:
    web: bool
    port: int
    why: str | None = None  # said to the user when the app opens in the browser unasked


def has_display(platform: str = sys.platform, env: Mapping[str, str] = os.environ) -> bool:
    """False on Linux (and other X11/Wayland systems) with neither DISPLAY nor WAYLAND_DISPLAY;
    Windows and macOS always have one."""
    if platform.startswith(("win", "darwin")):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _any_free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def place(
    *,
    web: bool,
    port: int | None,
    avoid: frozenset[int] = frozenset(),
    display: bool | None = None,
    host: str = "127.0.0.1",
) -> Placement:
    """Window or browser, and the web port: the one asked for (refused when taken or in
    `avoid`), else 8550 when free, else any free one."""
    display = has_display() if display is None else display
    why = None
    if not web and not display:
        web, why = True, "no display here: the scanner opens in the browser"
    if not web:
        return Placement(False, 0)
    if port is not None:
        if port in avoid or not port_free(port, host):
            raise PortTaken(port)
        return Placement(True, port, why)
    if DEFAULT_WEB_PORT not in avoid and port_free(DEFAULT_WEB_PORT, host):
        return Placement(True, DEFAULT_WEB_PORT, why)
    chosen = _any_free_port(host)
    while chosen in avoid:  # pragma: no cover - the OS does not hand out a port in use
        chosen = _any_free_port(host)
    return Placement(True, chosen, why)
