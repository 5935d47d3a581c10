"""Bearer tokens (`dk_live_…` API keys, `dk_dev_…` device tokens, enrolment codes): made from
random bytes, stored only as a public prefix plus HMAC-SHA256 under the server secret; and the
secrets the server must read back (webhook signing secrets), stored sealed (`SecretBox`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = [
    "API_KEY_PREFIX",
    "DEVICE_TOKEN_PREFIX",
    "SecretBox",
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


SEALED_PREFIX = "s1."
_SEAL_INFO = b"doorcheck webhook signing secret v1"
_NONCE = 12


class SecretBox:
    """Secrets the server must read back (webhook signing secrets) kept encrypted at rest, like
    ticket keys: AES-GCM under a key derived (HKDF) from the server secret.

        stored = box.seal("whsec_…")      # "s1.<b64url(nonce || ciphertext)>"
        box.open(stored) == "whsec_…"     # a row written before sealing reads as it is
    """

    def __init__(self, server_secret: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
            server_secret
        )
        self._aead = AESGCM(key)
        self._opened: dict[str, str] = {}

    @staticmethod
    def is_sealed(stored: str | None) -> bool:
        return bool(stored) and str(stored).startswith(SEALED_PREFIX)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _SEAL_INFO)
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, stored: str) -> str:
        """The secret in `stored`; ValueError when it was sealed under another server secret."""
        if not self.is_sealed(stored):
            return stored  # written before secrets were sealed (sealed at the next upgrade)
        if stored not in self._opened:
            from cryptography.exceptions import InvalidTag

            body = stored[len(SEALED_PREFIX) :]
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            try:
                plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], _SEAL_INFO)
            except InvalidTag:
                raise ValueError(
                    "cannot open a sealed webhook secret: this process's server secret is not "
                    "the one that sealed it (DOORCHECK_SECRET_KEY must be the same for every "
                    "server and worker)"
                ) from None
            self._opened[stored] = plain.decode()
        return self._opened[stored]
