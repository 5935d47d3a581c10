"""Bearer tokens (`dk_live_…` API keys, `dk_dev_…` device tokens, enrolment codes): made from
random bytes, stored only as a public prefix plus HMAC-SHA256 under the server secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = [
    "API_KEY_PREFIX",
    "DEVICE_TOKEN_PREFIX",
    "hash_token",
    "new_token",
    "public_prefix",
    "token_kind",
]

API_KEY_PREFIX = "dk_live_"
DEVICE_TOKEN_PREFIX = "dk_dev_"
TOKEN_BODY_LENGTH = 43  # url-safe base64 of 32 random bytes, unpadded
MAX_TOKEN_LENGTH = 100


def new_token(prefix: str) -> str:
    body = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return prefix + body


def hash_token(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def public_prefix(token: str) -> str:
    """What is shown of a key in lists: its kind and first four characters."""
    head = API_KEY_PREFIX if token.startswith(API_KEY_PREFIX) else DEVICE_TOKEN_PREFIX
    return token[: len(head) + 4]


def token_kind(token: str) -> str | None:
    """`api_key`, `device` or None when the string cannot be one of our tokens."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    for prefix, kind in ((API_KEY_PREFIX, "api_key"), (DEVICE_TOKEN_PREFIX, "device")):
        if token.startswith(prefix) and len(token) == len(prefix) + TOKEN_BODY_LENGTH:
            return kind
    return None
