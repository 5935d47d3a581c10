"""Pairing links (`doorcheck://pair?server=<url>&code=<code>`), as a pairing QR or a pasted text
carries them: recognised here without any network code, so the app's screens may use it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from scanner_app.errors import PairingError, Problem

__all__ = ["is_pairing_uri", "parse_pairing_uri"]


def is_pairing_uri(text: str) -> bool:
    """A `doorcheck://pair?server=…&code=…` link (from a pairing QR or pasted)."""
    return text.strip().lower().startswith("doorcheck://pair")


def parse_pairing_uri(uri: str) -> tuple[str, str]:
    """(server URL, enrolment code) of a pairing link."""
    parsed = urlparse(uri.strip())
    query = parse_qs(parsed.query)
    if parsed.scheme != "doorcheck" or "server" not in query or "code" not in query:
        raise PairingError(Problem.NOT_A_PAIRING_LINK, "not a doorcheck pairing code")
    return query["server"][0], query["code"][0]
