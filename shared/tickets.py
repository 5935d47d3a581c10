"""Signed ticket codes (SPEC section 5): ``DC1`` + base32 of a 35-byte payload and its Ed25519
signature, plus the per-event key pair and its encryption at rest.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.ids import ATTENDEE, base32_decode, base32_encode, id_bytes, make_id

__all__ = [
    "FORMAT_VERSION",
    "MAX_CODE_LENGTH",
    "PAYLOAD_SIZE",
    "SIGNATURE_SIZE",
    "TICKET_PREFIX",
    "EventKey",
    "InvalidSignature",
    "MalformedCode",
    "SignedTicket",
    "TicketError",
    "TicketPayload",
    "decode_ticket",
    "decrypt_private_key",
    "encrypt_private_key",
    "event_digest",
    "is_signed_code",
    "issue_ticket",
    "normalize_code",
    "public_key_from_b64",
    "verify_ticket",
]

TICKET_PREFIX = "DC1"
FORMAT_VERSION = 1
MAX_CODE_LENGTH = 512
_LAYOUT = struct.Struct(">B8s16sHII")
PAYLOAD_SIZE = _LAYOUT.size  # 35
SIGNATURE_SIZE = 64
_UINT16_MAX = 0xFFFF
_UINT32_MAX = 0xFFFFFFFF
# Raw input longer than this is refused before decoding or stripping (a 10 MB paste stays cheap).
_MAX_RAW_LENGTH = 4 * MAX_CODE_LENGTH
# Cc (C0, DEL, C1 controls), lone surrogates and U+FFFD (bytes a reader could not read as
# text); everything else printable is a possible code.
_FORBIDDEN_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_KEY_INFO = b"doorcheck ticket key"
_KEY_TOKEN_VERSION = "v1"
_NONCE_SIZE = 12
_B64URL_KEY = re.compile(r"[A-Za-z0-9_-]{43}")


class TicketError(Exception):
    """A scanned string that cannot be a valid ticket; ``reason`` is the verdict reason code."""

    reason: str = "malformed_code"


class MalformedCode(TicketError):
    """Not decodable: bad characters, wrong length, bad base32, unknown version…"""

    reason = "malformed_code"


class InvalidSignature(TicketError):
    """Decodes fine but the signature does not match the event's public key."""

    reason = "invalid_signature"


# --- keys -------------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True, slots=True, repr=False)
class EventKey:
    """One event's Ed25519 key pair: ``EventKey.from_seed(os.urandom(32))``."""

    seed: bytes = field(repr=False)
    _public: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != 32:
            raise ValueError("an Ed25519 seed is exactly 32 bytes")
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        object.__setattr__(self, "_public", public)

    def __repr__(self) -> str:
        return f"EventKey(public_key_b64={self.public_key_b64!r})"

    @classmethod
    def from_seed(cls, seed32: bytes) -> EventKey:
        return cls(seed=bytes(seed32))

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (store it only encrypted: ``encrypt_private_key``)."""
        return self.seed

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._public

    @property
    def public_key_b64(self) -> str:
        """The wire form (``ticket_public_key``): url-safe base64 without padding, 43 chars."""
        return _b64url(self._public)


def public_key_from_b64(s: str) -> bytes:
    """Decode a ``ticket_public_key`` back to 32 raw bytes; ValueError if it is not one."""
    if not isinstance(s, str) or _B64URL_KEY.fullmatch(s) is None:
        raise ValueError("a ticket public key is 43 url-safe base64 characters")
    raw = base64.urlsafe_b64decode(s + "=")
    if _b64url(raw) != s:
        raise ValueError("non-canonical ticket public key")
    return raw


def _aead(secret: bytes) -> AESGCM:
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the server secret must be non-empty bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
    return AESGCM(hkdf.derive(secret))


def encrypt_private_key(private_raw: bytes, secret: bytes, nonce: bytes) -> str:
    """Encrypt a private key for storage: ``"v1." + b64url(nonce || AES-GCM ciphertext)``.

    ``nonce`` is 12 fresh random bytes from the caller; never reuse one with the same secret.
    """
    if not isinstance(private_raw, bytes) or len(private_raw) != 32:
        raise ValueError("an Ed25519 private key is exactly 32 bytes")
    if not isinstance(nonce, bytes) or len(nonce) != _NONCE_SIZE:
        raise ValueError("the nonce is exactly 12 bytes")
    sealed = _aead(secret).encrypt(nonce, private_raw, _KEY_INFO)
    return f"{_KEY_TOKEN_VERSION}.{_b64url(nonce + sealed)}"


def decrypt_private_key(token: str, secret: bytes) -> bytes:
    """Inverse of ``encrypt_private_key``; ValueError on a wrong secret or a damaged token."""
    version, sep, body = token.partition(".") if isinstance(token, str) else ("", "", "")
    if not sep or version != _KEY_TOKEN_VERSION:
        raise ValueError("not an encrypted ticket key token")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:  # binascii.Error
        raise ValueError("damaged encrypted ticket key token") from None
    nonce, sealed = blob[:_NONCE_SIZE], blob[_NONCE_SIZE:]
    if len(nonce) != _NONCE_SIZE:
        raise ValueError("damaged encrypted ticket key token")
    try:
        private_raw = _aead(secret).decrypt(nonce, sealed, _KEY_INFO)
    except InvalidTag:
        raise ValueError("cannot decrypt the ticket key: wrong secret or damaged token") from None
    if len(private_raw) != 32:
        raise ValueError("decrypted ticket key has the wrong length")
    return private_raw


# --- payload ----------------------------------------------------------------------------------


def event_digest(event_id: str) -> bytes:
    """The 8 bytes that bind a ticket to its event: first 8 bytes of SHA-256(event_id)."""
    return hashlib.sha256(event_id.encode("utf-8")).digest()[:8]


def _check_time(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _UINT32_MAX:
        raise ValueError(f"{name} is None or epoch seconds in 1..2**32-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketPayload:
    """What a signed ticket says. ``valid_from``/``valid_until`` are epoch seconds or None."""

    event_digest: bytes
    attendee_id: str
    ticket_type_number: int
    valid_from: int | None = None
    valid_until: int | None = None
    version: int = FORMAT_VERSION
    _attendee_raw: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if self.version != FORMAT_VERSION:
            raise ValueError(f"unsupported ticket format version {self.version!r}")
        if not isinstance(self.event_digest, bytes) or len(self.event_digest) != 8:
            raise ValueError("event_digest is exactly 8 bytes")
        raw = id_bytes(self.attendee_id, ATTENDEE)
        if len(raw) != 16:
            raise ValueError("attendee_id must encode exactly 16 bytes")
        object.__setattr__(self, "_attendee_raw", raw)
        number = self.ticket_type_number
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError("ticket_type_number must be an int")
        if not 0 <= number <= _UINT16_MAX:
            raise ValueError("ticket_type_number must fit in 16 bits")
        _check_time("valid_from", self.valid_from)
        _check_time("valid_until", self.valid_until)

    def to_bytes(self) -> bytes:
        """The 35 signed bytes (layout ``>B8s16sHII``; 0 stands for no bound)."""
        return _LAYOUT.pack(
            self.version,
            self.event_digest,
            self._attendee_raw,
            self.ticket_type_number,
            self.valid_from or 0,
            self.valid_until or 0,
        )


@dataclass(frozen=True, slots=True)
class SignedTicket:
    """A decoded (not yet verified) ticket: its payload, signature and the exact signed bytes."""

    payload: TicketPayload
    signature: bytes
    signed_bytes: bytes


@functools.lru_cache(maxsize=64)
def _private_key(private_raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(private_raw)


def issue_tickets(
    payloads: Sequence[TicketPayload], private_raw: bytes, *, workers: int = 2
) -> list[str]:
    """Sign many payloads, in order; Ed25519 signing releases the GIL, so `workers` threads
    use that many cores: ``issue_tickets(payloads, key.private_bytes())``."""
    if workers <= 1 or len(payloads) < 1000:
        return [issue_ticket(p, private_raw) for p in payloads]
    size = -(-len(payloads) // workers)
    parts = [payloads[i : i + size] for i in range(0, len(payloads), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        signed = pool.map(lambda part: [issue_ticket(p, private_raw) for p in part], parts)
        return [code for part in signed for code in part]


def issue_ticket(payload: TicketPayload, private_raw: bytes) -> str:
    """Sign a payload into the QR string: ``issue_ticket(p, key.private_bytes())`` -> ``"DC1…"``."""
    signed = payload.to_bytes()
    signature = _private_key(private_raw).sign(signed)
    return TICKET_PREFIX + base32_encode(signed + signature)


# --- scanning ---------------------------------------------------------------------------------


def normalize_code(raw: str | bytes) -> str:
    """Clean a scanned string: strip scanner whitespace, uppercase ``dc1…`` codes.

    Raises MalformedCode for empty, oversized (> 512 chars), non-UTF-8 or control-character input.
    """
    if isinstance(raw, bytes | bytearray):
        if len(raw) > _MAX_RAW_LENGTH:
            raise MalformedCode("code too long")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedCode("code is not valid UTF-8") from None
    elif isinstance(raw, str):
        if len(raw) > _MAX_RAW_LENGTH:
            raise MalformedCode("code too long")
        text = raw
    else:
        raise MalformedCode("code must be text or bytes")
    text = text.strip()
    if not text:
        raise MalformedCode("empty code")
    if len(text) > MAX_CODE_LENGTH:
        raise MalformedCode(f"code longer than {MAX_CODE_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(text) is not None:
        raise MalformedCode("code contains control characters")
    if text[:3].upper() == TICKET_PREFIX:
        text = text.upper()
    return text


def is_signed_code(normalized: str) -> bool:
    """True when the (normalized) string claims to be a signed ticket (``DC1…``)."""
    return isinstance(normalized, str) and normalized.startswith(TICKET_PREFIX)


def _payload_from_bytes(signed: bytes) -> TicketPayload:
    version, digest, attendee, number, valid_from, valid_until = _LAYOUT.unpack(signed)
    try:
        return TicketPayload(
            version=version,
            event_digest=digest,
            attendee_id=make_id(ATTENDEE, attendee),
            ticket_type_number=number,
            valid_from=valid_from or None,
            valid_until=valid_until or None,
        )
    except ValueError as exc:
        raise MalformedCode(f"invalid ticket payload: {exc}") from None


def decode_ticket(normalized: str) -> SignedTicket:
    """Parse a ``DC1…`` code without checking its signature; MalformedCode if it is not one."""
    code = normalize_code(normalized)
    if not code.startswith(TICKET_PREFIX):
        raise MalformedCode("not a signed doorcheck ticket")
    try:
        blob = base32_decode(code[len(TICKET_PREFIX) :])  # canonical: one ticket, one spelling
    except ValueError as exc:
        raise MalformedCode(f"ticket is not valid base32: {exc}") from None
    if blob[0] != FORMAT_VERSION:
        raise MalformedCode(f"unsupported ticket format version {blob[0]}")
    if len(blob) != PAYLOAD_SIZE + SIGNATURE_SIZE:
        raise MalformedCode("ticket has the wrong length (truncated?)")
    signed, signature = blob[:PAYLOAD_SIZE], blob[PAYLOAD_SIZE:]
    return SignedTicket(
        payload=_payload_from_bytes(signed), signature=signature, signed_bytes=signed
    )


@functools.lru_cache(maxsize=256)
def _public_key(public_raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_raw)


def verify_ticket(normalized: str, public_raw: bytes) -> TicketPayload:
    """Decode and verify a ticket against an event's raw public key; returns the payload.

    Raises MalformedCode or InvalidSignature (also when ``public_raw`` is not a usable key).
    """
    ticket = decode_ticket(normalized)
    try:
        key = _public_key(bytes(public_raw))
    except (TypeError, ValueError):
        raise InvalidSignature("the event's ticket public key is not a valid Ed25519 key") from None
    try:
        key.verify(ticket.signature, ticket.signed_bytes)
    except _CryptoInvalidSignature:
        raise InvalidSignature("ticket signature does not match the event key") from None
    return ticket.payload
