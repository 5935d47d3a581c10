"""Pairing a device with a server: the enrolment code (typed, or inside a pairing link / QR
`doorcheck://pair?server=<url>&code=<code>`) traded once for the device's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

from scanner_app.client import ServerClient, ServerRefused, SyncError
from scanner_app.errors import PairingError, Problem

__all__ = ["Credentials", "enrol"]


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
