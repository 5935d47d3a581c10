"""Where the app opens: a window with a display, the browser without one, on a free port."""

from __future__ import annotations

import socket

import pytest

from scanner_app.launch import DEFAULT_WEB_PORT, PortTaken, has_display, place, port_free


def test_a_display_is_known_by_its_variables() -> None:
    assert not has_display("linux", {})
    assert has_display("linux", {"DISPLAY": ":0"})
    assert has_display("linux", {"WAYLAND_DISPLAY": "wayland-0"})
    assert has_display("win32", {}) and has_display("darwin", {})


def test_no_display_means_the_browser_on_a_free_port() -> None:
    spot = place(web=False, port=None, display=False)
    assert spot.web and spot.why and port_free(spot.port)
    assert place(web=False, port=None, display=True).web is False


def test_a_port_asked_for_must_be_free_and_not_avoided() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(PortTaken, match=f"port {taken} is taken"):
            place(web=True, port=taken)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(PortTaken):
        place(web=True, port=free, avoid=frozenset({free}))
    assert place(web=True, port=free).port == free


def test_the_default_port_is_left_when_it_is_taken() -> None:
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_WEB_PORT))
        holder.listen()
    except OSError:
        pass  # something else holds it already: the same situation
    try:
        spot = place(web=True, port=None)
        assert spot.port != DEFAULT_WEB_PORT and port_free(spot.port)
        assert place(web=True, port=None, avoid=frozenset({spot.port})).port != spot.port
    finally:
        holder.close()
