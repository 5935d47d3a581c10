"""Standard Webhooks signing and verification (SPEC section 8, https://www.standardwebhooks.com).

Secrets are ``whsec_`` + base64 of random bytes; the caller supplies the bytes and the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "new_secret",
    "secret_bytes",
    "sign",
    "signature_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
_SIGNATURE_VERSION = "v1"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")


class WebhookVerificationError(Exception):
    """A webhook that must be rejected: missing header, stale timestamp or no matching signature."""


def new_secret(raw32: bytes) -> str:
    """A new endpoint secret from 32 random bytes: ``new_secret(os.urandom(32))`` -> ``whsec_…``."""
    if not isinstance(raw32, bytes) or len(raw32) != 32:
        raise ValueError("a webhook secret is made from exactly 32 random bytes")
    return SECRET_PREFIX + base64.b64encode(raw32).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a secret, with or without the ``whsec_`` prefix; ValueError if invalid."""
    if not isinstance(secret, str):
        raise ValueError("a webhook secret is a string")
    body = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by standard base64") from None
    if not raw:
        raise ValueError("a webhook secret may not be empty")
    return raw


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` value: ``"v1,<b64> v1,<b64>"``, one per secret (rotation)."""
    if isinstance(secrets, str):
        raise TypeError("secrets is a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return " ".join(
        f"{_SIGNATURE_VERSION},"
        + base64.b64encode(_digest(secret_bytes(s), msg_id, timestamp, body)).decode("ascii")
        for s in secrets
    )


def signature_headers(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """All three headers for one delivery attempt (``msg_id`` stays the same across retries)."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(msg_id, timestamp, body, secrets),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name and value:
            return value
    raise WebhookVerificationError(f"missing required header {name}")


def verify(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: int, tolerance: int = 300
) -> None:
    """Check a received webhook; returns None or raises WebhookVerificationError.

    ``verify(request.headers, await request.body(), "whsec_…", now=int(time.time()))``
    """
    msg_id = _header(headers, HEADER_ID)
    raw_timestamp = _header(headers, HEADER_TIMESTAMP).strip()
    signatures = _header(headers, HEADER_SIGNATURE)
    if _TIMESTAMP_RE.fullmatch(raw_timestamp) is None:
        raise WebhookVerificationError("invalid webhook-timestamp: expected unix seconds")
    timestamp = int(raw_timestamp)
    if now - timestamp > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp too old ({now - timestamp} s > {tolerance} s tolerance)"
        )
    if timestamp - now > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp too new ({timestamp - now} s ahead > {tolerance} s tolerance)"
        )
    expected = _digest(secret_bytes(secret), msg_id, timestamp, body)
    for candidate in signatures.split(" "):
        version, sep, encoded = candidate.partition(",")
        if not sep or version != _SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise WebhookVerificationError("no matching signature in webhook-signature")
