"""Standard Webhooks signing and verification (SPEC section 8, https://www.standardwebhooks.com),
and the message's wire format: the body envelope, the API version, the `*` subscription, what an
`attendee.updated` reports as `previous` (SPEC section 13).

Secrets are ``whsec_`` + base64 of random bytes; the caller supplies the bytes and the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = [
    "API_VERSION",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_PREFIX",
    "WILDCARD",
    "WebhookVerificationError",
    "envelope",
    "new_secret",
    "previous_values",
    "secret_bytes",
    "sign",
    "signature_headers",
    "subscribes",
    "verify",
]

SECRET_PREFIX = "whsec_"
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
_SIGNATURE_VERSION = "v1"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")
# The version of the message bodies: a new value when a payload changes in a way a receiver
# written for the old one could misread (fields are added without a new version).
API_VERSION = "2026-12-09"
WILDCARD = "*"  # `events: ["*"]`: every type, present and future (never `webhook.test`)


def envelope(msg_id: str, type: str, timestamp: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The body of every message: ``{"id": "msg_…", "type", "timestamp", "api_version",
    "data"}``; ``id`` equals the ``webhook-id`` header."""
    return {
        "id": msg_id,
        "type": type,
        "timestamp": timestamp,
        "api_version": API_VERSION,
        "data": dict(data),
    }


def subscribes(events: Collection[str], type: str) -> bool:
    """Whether an endpoint listening to ``events`` receives a message of ``type``."""
    return WILDCARD in events or type in events


def previous_values(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Collection[str]
) -> dict[str, Any]:
    """``attendee.updated``'s ``previous``: each of ``fields`` that changed, with its old value.

    ``previous_values({"company": None}, {"company": "Acme"}, ["company"]) == {"company": None}``
    """
    return {
        name: before.get(name) for name in sorted(fields) if before.get(name) != after.get(name)
    }


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
