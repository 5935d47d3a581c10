"""Pairing a device with a server: the enrolment code (typed, or inside a pairing link / QR
`doorcheck://pair?server=<url>&code=<code>`) traded once for the device's token; and, at the
other end of a device's life, telling the server it erased its data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

from scanner_app.client import ServerClient, ServerRefused, SyncError, Unreachable
from scanner_app.errors import PairingError, Problem
from shared.sync import WipeReason, WipeReport

__all__ = ["Credentials", "enrol", "report_wipe"]

log = logging.getLogger("doorcheck.scanner")
REPORT_TRIES = 3


@dataclass(frozen=True, slots=True)
class Credentials:
    server_url: str
    device_id: str
    device_token: str
    organization_id: str
    device_name: str


def enrol(
    server_url: str, code: str, name: str, *, transport: httpx.BaseTransport | None = None
) -> Credentials:
    """Trade an enrolment code for this device's credentials."""
    server_url = server_url.strip().rstrip("/")
    parsed = urlparse(server_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise PairingError(
            Problem.BAD_SERVER_URL, "the server address must start with http:// or https://"
        )
    if not code.strip():
        raise PairingError(Problem.NO_ENROLMENT_CODE, "enter the enrolment code shown by the admin")
    device_name = name.strip()[:100] or "Scanner"
    anonymous = ServerClient(server_url, transport=transport)
    try:
        answer = anonymous.enroll(code.strip(), device_name)
    except SyncError as exc:
        if exc.error_code == "invalid_enrollment_code":
            raise PairingError(
                Problem.ENROLMENT_REFUSED,
                "this enrolment code is unknown, used or expired: ask for a new one",
            ) from None
        code = Problem.ENROLMENT_REFUSED if isinstance(exc, ServerRefused) else exc.code
        raise PairingError(code, str(exc)) from None
    finally:
        anonymous.close()
    return Credentials(
        server_url,
        str(answer["device_id"]),
        str(answer["device_token"]),
        str(answer.get("organization_id", "")),
        name,
    )


def report_wipe(
    server_url: str,
    token: str,
    reason: WipeReason,
    pending: int,
    *,
    transport: httpx.BaseTransport | None = None,
) -> bool:
    """Tell the server this device erased its data and how many queued items went with it (a
    few quick tries: the credentials are gone from the device, only this call still holds
    them). True when the server recorded it."""
    client = ServerClient(server_url, token, timeout=5.0, transport=transport)
    try:
        for _ in range(REPORT_TRIES):
            try:
                client.report_wipe(WipeReport(reason=reason, pending=pending))
                return True
            except Unreachable as exc:
                log.info("wipe report not delivered: %s", exc)
            except SyncError as exc:  # refused: nothing a retry would change
                log.info("wipe report refused: %s", exc)
                return False
        return False
    finally:
        client.close()
