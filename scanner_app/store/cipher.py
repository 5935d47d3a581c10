"""Sealing the gate's personal fields and credentials under its data key (SPEC section 10: a
method that also runs in Flet's mobile builds, whose packages have `cryptography` and no
SQLCipher).

Each row's personal fields travel together in one AES-GCM blob bound to the row's id (a blob
moved to another row does not open). Lookups go through blind indexes: keyed HMACs of what is
looked up (a custom ticket code), so equal texts give equal tags and a tag says nothing of its
text without the key; names are searched in memory (`names.py`). What the file still shows to
someone without the key: how many attendees, readings and registrations there are, their
ticket types, statuses, times and zone state (docs/scanner.md, "A lost gate").
"""

from __future__ import annotations

import hmac
import os
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KEY_BYTES", "Cipher"]

KEY_BYTES = 32
_NONCE = 12
_TAG = 8  # bytes of a blind index: enough to narrow a lookup; every hit is opened and checked


def _derive(data_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


class Cipher:
    """Seals and opens stored values, and makes blind-index tags, under one data key.

    >>> c = Cipher(os.urandom(32))
    >>> c.open(c.seal(["Ana", None], b"att_1"), b"att_1")
    ['Ana', None]
    """

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError("the data key is 32 bytes")
        self.data_key = data_key
        self._aead = AESGCM(_derive(data_key, b"doorcheck gate fields v1"))
        self._index = _derive(data_key, b"doorcheck gate blind index v1")
        self._pack = msgspec.msgpack.Encoder().encode
        self._unpack = msgspec.msgpack.Decoder().decode

    def seal(self, value: Any, aad: bytes) -> bytes:
        """`nonce || AES-GCM(msgpack(value))`, bound to `aad` (the row it belongs to)."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, self._pack(value), aad)

    def open(self, sealed: bytes, aad: bytes) -> Any:
        """The value sealed for `aad` (raises `cryptography.exceptions.InvalidTag` when the key
        or the row is not the one it was sealed with)."""
        return self._unpack(self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad))

    def tag(self, text: str | None) -> bytes | None:
        """A blind index of `text` (None for no text)."""
        if not text:
            return None
        data = text.encode("utf-8", "surrogatepass")
        return hmac.digest(self._index, data, "sha256")[:_TAG]
