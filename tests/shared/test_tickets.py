"""Signed ticket codes: issue/verify round trip, tampering, hostile scanner input, key storage."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ids import make_id
from shared.tickets import (
    MAX_CODE_LENGTH,
    PAYLOAD_SIZE,
    EventKey,
    InvalidSignature,
    MalformedCode,
    SignedTicket,
    TicketError,
    TicketPayload,
    decode_ticket,
    decrypt_private_key,
    encrypt_private_key,
    event_digest,
    is_signed_code,
    issue_ticket,
    normalize_code,
    public_key_from_b64,
    verify_ticket,
)

KEY = EventKey.from_seed(bytes(range(32)))
OTHER_KEY = EventKey.from_seed(bytes(range(1, 33)))
PAYLOAD = TicketPayload(
    event_digest=event_digest("evt_demo"),
    attendee_id=make_id("att", bytes(range(100, 116))),
    ticket_type_number=2,
    valid_from=1_778_800_000,
    valid_until=None,
)
CODE = issue_ticket(PAYLOAD, KEY.private_bytes())
QR_ALPHANUMERIC = re.compile(r"[0-9A-Z $%*+\-./:]+")

payloads = st.builds(
    TicketPayload,
    event_digest=st.binary(min_size=8, max_size=8),
    attendee_id=st.binary(min_size=16, max_size=16).map(lambda raw: make_id("att", raw)),
    ticket_type_number=st.integers(min_value=0, max_value=0xFFFF),
    valid_from=st.none() | st.integers(min_value=1, max_value=0xFFFFFFFF),
    valid_until=st.none() | st.integers(min_value=1, max_value=0xFFFFFFFF),
)


def _raw(code: str) -> bytes:
    body = code[3:]
    return base64.b32decode(body + "=" * (-len(body) % 8))


def _encode(raw: bytes) -> str:
    return "DC1" + base64.b32encode(raw).decode().rstrip("=")


# --- round trip and shape -----------------------------------------------------------------------


@settings(max_examples=200)
@given(payload=payloads, seed=st.binary(min_size=32, max_size=32))
def test_verify_inverts_issue(payload: TicketPayload, seed: bytes) -> None:
    key = EventKey.from_seed(seed)
    code = issue_ticket(payload, key.private_bytes())
    assert verify_ticket(code, key.public_bytes()) == payload
    assert QR_ALPHANUMERIC.fullmatch(code)
    assert is_signed_code(code)


def test_code_shape() -> None:
    assert CODE.startswith("DC1")
    assert len(CODE) == 3 + 159  # 99 bytes of base32 without padding
    assert QR_ALPHANUMERIC.fullmatch(CODE)
    assert len(_raw(CODE)) == PAYLOAD_SIZE + 64


def test_decode_exposes_payload_signature_and_signed_bytes() -> None:
    ticket = decode_ticket(CODE)
    assert isinstance(ticket, SignedTicket)
    assert ticket.payload == PAYLOAD
    assert ticket.signed_bytes == PAYLOAD.to_bytes() == _raw(CODE)[:35]
    assert ticket.signature == _raw(CODE)[35:]


def test_event_digest_is_first_8_bytes_of_sha256() -> None:
    assert event_digest("evt_x") == hashlib.sha256(b"evt_x").digest()[:8]


def test_zero_on_the_wire_means_no_bound() -> None:
    payload = TicketPayload(
        event_digest=b"\0" * 8, attendee_id=PAYLOAD.attendee_id, ticket_type_number=0
    )
    signed = payload.to_bytes()
    assert signed[-8:] == b"\0" * 8
    got = verify_ticket(issue_ticket(payload, KEY.private_bytes()), KEY.public_bytes())
    assert (got.valid_from, got.valid_until) == (None, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"event_digest": b"short"},
        {"attendee_id": "evt_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"attendee_id": make_id("att", b"x" * 15)},
        {"ticket_type_number": -1},
        {"ticket_type_number": 0x10000},
        {"valid_from": 0},
        {"valid_until": 2**32},
    ],
)
def test_invalid_payloads_are_refused(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "event_digest": PAYLOAD.event_digest,
        "attendee_id": PAYLOAD.attendee_id,
        "ticket_type_number": 1,
        **changes,
    }
    with pytest.raises(ValueError):
        TicketPayload(**fields)  # type: ignore[arg-type]


# --- scanner noise that must still verify ---------------------------------------------------------


@pytest.mark.parametrize(
    "scanned",
    [
        CODE,
        CODE.lower(),
        CODE + "\r\n",
        "  " + CODE + "\t",
        CODE.lower() + "\n",
        (CODE + "\r\n").encode(),
        "Dc1" + CODE[3:].lower(),
    ],
)
def test_scanner_noise_still_verifies(scanned: str | bytes) -> None:
    assert normalize_code(scanned) == CODE
    assert verify_ticket(normalize_code(scanned), KEY.public_bytes()) == PAYLOAD
    assert verify_ticket(scanned, KEY.public_bytes()) == PAYLOAD  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  custom-Code-42\r\n", "custom-Code-42"),  # custom codes keep their case
        ("VIP 007", "VIP 007"),
        ("🎟️ ticket", "🎟️ ticket"),
        ("x" * MAX_CODE_LENGTH, "x" * MAX_CODE_LENGTH),
        ("é".encode(), "é"),
    ],
)
def test_normalize_keeps_other_codes(raw: str | bytes, expected: str) -> None:
    assert normalize_code(raw) == expected
    assert not is_signed_code(normalize_code(raw))


# --- tampering ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_flipped_signature_bit_is_invalid_signature(bit: int) -> None:
    raw = bytearray(_raw(CODE))
    raw[35 + bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidSignature) as info:
        verify_ticket(_encode(bytes(raw)), KEY.public_bytes())
    assert info.value.reason == "invalid_signature"


@pytest.mark.parametrize("index", [1, 9, 25, 26, 28, 33])
def test_tampered_payload_is_invalid_signature(index: int) -> None:
    raw = bytearray(_raw(CODE))
    raw[index] ^= 0x01
    with pytest.raises(InvalidSignature):
        verify_ticket(_encode(bytes(raw)), KEY.public_bytes())


def test_wrong_key_is_invalid_signature() -> None:
    with pytest.raises(InvalidSignature):
        verify_ticket(CODE, OTHER_KEY.public_bytes())


@pytest.mark.parametrize("public", [b"", b"\0" * 31, b"\xff" * 33])
def test_unusable_public_key_is_invalid_signature(public: bytes) -> None:
    with pytest.raises(InvalidSignature):
        verify_ticket(CODE, public)


# --- malformed input ----------------------------------------------------------------------------


def _version_2() -> str:
    raw = bytearray(_raw(CODE))
    raw[0] = 2
    return _encode(bytes(raw))


def _non_canonical() -> str:
    # The last base32 char carries 2 payload bits and 3 unused ones; set an unused bit.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    last = alphabet[alphabet.index(CODE[-1]) | 1]
    return CODE[:-1] + last


NOT_A_CODE = [
    "",
    "   \r\n",
    b"",
    "x" * (MAX_CODE_LENGTH + 1),
    "DC1" + "A" * 600,
    "A" * 10_000_000,
    b"A" * 10_000_000,
    " " * 10_000_000 + CODE,
    CODE[:50] + "\0" + CODE[51:],
    "abc\0def",
    "\0",
    "abc\x07",
    "abc\x1bdef",
    "abc\x7f",
    "abc\x85def",  # C1 control
    "ab\ncd",
    "ab\tcd",
    "abc\ud800",  # lone surrogate
    b"\xff\xfe",
    b"abc\xc3",  # truncated UTF-8
    b"\xed\xa0\x80",  # UTF-8-encoded surrogate
]

MALFORMED_TICKETS = [
    "DC1",
    CODE[:-1],  # truncated by one char
    CODE[:-8],
    CODE[:100],
    CODE + "AAAAAAAA",  # too long
    CODE[:50] + "1" + CODE[51:],  # not base32
    CODE[:50] + "=" + CODE[51:],
    CODE + "=",
    CODE[:50] + " " + CODE[51:],
    CODE[:50] + "é" + CODE[51:],
    _version_2(),
    _non_canonical(),
]


@pytest.mark.parametrize("raw", NOT_A_CODE)
def test_input_that_is_no_code_at_all_is_malformed(raw: str | bytes) -> None:
    for call in (normalize_code, decode_ticket):
        with pytest.raises(MalformedCode) as info:
            call(raw)  # type: ignore[arg-type]
        assert info.value.reason == "malformed_code"
    with pytest.raises(MalformedCode):
        verify_ticket(raw, KEY.public_bytes())  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", MALFORMED_TICKETS)
def test_broken_tickets_are_malformed(raw: str) -> None:
    assert is_signed_code(normalize_code(raw))
    with pytest.raises(MalformedCode):
        decode_ticket(raw)
    with pytest.raises(MalformedCode):
        verify_ticket(raw, KEY.public_bytes())


def test_normalize_of_a_non_ticket_is_not_decodable() -> None:
    assert normalize_code("hello") == "hello"
    with pytest.raises(MalformedCode):
        decode_ticket("hello")


@pytest.mark.timeout(30)  # a hang guard, not a speed claim: the length check comes first
def test_huge_input_is_rejected_before_any_work() -> None:
    huge = "DC1" + "A" * 10_000_000
    for _ in range(100):
        with pytest.raises(MalformedCode):
            verify_ticket(huge, KEY.public_bytes())


# --- anything at all only ever raises TicketError -------------------------------------------------


def _mutations(code: str) -> st.SearchStrategy[str]:
    def mutate(data: tuple[int, str]) -> str:
        index, text = data
        index %= len(code)
        return code[:index] + text + code[index + 1 :]

    return st.tuples(st.integers(min_value=0), st.text(max_size=3)).map(mutate)


hostile = (
    st.text()
    | st.binary()
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=").map(lambda s: "DC1" + s)
    | st.binary(max_size=120).map(_encode)
    | _mutations(CODE)
    | st.integers(min_value=0, max_value=len(CODE)).map(lambda n: CODE[:n])
)


@settings(max_examples=500)
@given(hostile)
def test_anything_raises_only_ticket_errors(raw: str | bytes) -> None:
    for call in (normalize_code, decode_ticket):
        with contextlib.suppress(TicketError):
            call(raw)  # type: ignore[arg-type]
    try:
        payload = verify_ticket(raw, KEY.public_bytes())  # type: ignore[arg-type]
    except TicketError as exc:
        assert exc.reason in {"malformed_code", "invalid_signature"}
    else:
        assert payload == PAYLOAD  # only the real ticket verifies


# --- keys ---------------------------------------------------------------------------------------


def test_event_key_shapes_and_public_key_wire_form() -> None:
    assert len(KEY.private_bytes()) == 32
    assert len(KEY.public_bytes()) == 32
    assert len(KEY.public_key_b64) == 43
    assert "=" not in KEY.public_key_b64
    assert public_key_from_b64(KEY.public_key_b64) == KEY.public_bytes()
    assert EventKey.from_seed(bytes(range(32))) == KEY
    assert KEY.private_bytes().hex() not in repr(KEY)


@pytest.mark.parametrize("bad", ["", "abc", "A" * 44, "+" * 43, "/" * 43, "A" * 42 + "B"])
def test_public_key_from_b64_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_b64(bad)


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        EventKey.from_seed(b"\0" * 31)


def test_private_key_encryption_round_trip() -> None:
    token = encrypt_private_key(KEY.private_bytes(), b"server secret", b"\1" * 12)
    assert KEY.private_bytes().hex() not in token
    assert decrypt_private_key(token, b"server secret") == KEY.private_bytes()
    other_nonce = encrypt_private_key(KEY.private_bytes(), b"server secret", b"\2" * 12)
    assert other_nonce != token


@pytest.mark.parametrize(
    ("mangle", "secret"),
    [
        (lambda t: t, b"wrong secret"),
        (lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], b"server secret"),
        (lambda t: t[:20], b"server secret"),
        (lambda t: "v2" + t[2:], b"server secret"),
        (lambda t: "garbage", b"server secret"),
        (lambda t: "v1.!!!", b"server secret"),
    ],
)
def test_private_key_decryption_fails_cleanly(mangle: object, secret: bytes) -> None:
    token = encrypt_private_key(KEY.private_bytes(), b"server secret", b"\1" * 12)
    with pytest.raises(ValueError):
        decrypt_private_key(mangle(token), secret)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("private", "secret", "nonce"),
    [(b"x" * 31, b"s", b"n" * 12), (b"x" * 32, b"", b"n" * 12), (b"x" * 32, b"s", b"n" * 11)],
)
def test_encrypt_validates_its_arguments(private: bytes, secret: bytes, nonce: bytes) -> None:
    with pytest.raises(ValueError):
        encrypt_private_key(private, secret, nonce)
