"""Standard Webhooks signing, cross-checked against the independent ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as TheirError

from shared.webhooks import (
    WebhookVerificationError,
    new_secret,
    secret_bytes,
    sign,
    signature_headers,
    verify,
)

SECRET = new_secret(bytes(range(32)))
NEW_SECRET = new_secret(bytes(range(32, 64)))
BODY = (
    b'{"type":"checkin.accepted","timestamp":"2026-05-15T00:30:00Z","data":{"name":"Zo\xc3\xab"}}'
)
MSG_ID = "msg_2f3kq7"
NOW = 1_778_800_000


def test_secret_format() -> None:
    assert SECRET.startswith("whsec_")
    assert base64.b64decode(SECRET.removeprefix("whsec_")) == bytes(range(32))
    assert secret_bytes(SECRET) == secret_bytes(SECRET.removeprefix("whsec_")) == bytes(range(32))


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_!!!!", "whsec_a b"])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        secret_bytes(bad)


def test_new_secret_needs_32_bytes() -> None:
    with pytest.raises(ValueError):
        new_secret(b"short")


def test_signature_is_hmac_of_id_timestamp_body() -> None:
    expected = hmac.new(bytes(range(32)), f"{MSG_ID}.{NOW}.".encode() + BODY, hashlib.sha256)
    assert sign(MSG_ID, NOW, BODY, [SECRET]) == "v1," + base64.b64encode(expected.digest()).decode()


def test_headers() -> None:
    headers = signature_headers(MSG_ID, NOW, BODY, [SECRET])
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(MSG_ID, NOW, BODY, [SECRET]),
    }
    verify(headers, BODY, SECRET, now=NOW)


def test_sign_refuses_a_bare_string_or_no_secrets() -> None:
    with pytest.raises(TypeError):
        sign(MSG_ID, NOW, BODY, SECRET)
    with pytest.raises(ValueError):
        sign(MSG_ID, NOW, BODY, [])


# --- interoperability with the reference library -----------------------------------------------


def test_their_signature_verifies_with_ours() -> None:
    now = int(time.time())
    theirs = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(now, tz=UTC), BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": theirs}
    verify(headers, BODY, SECRET, now=now)
    assert theirs == sign(MSG_ID, now, BODY, [SECRET])


def test_our_signature_verifies_with_theirs() -> None:
    now = int(time.time())
    headers = signature_headers(MSG_ID, now, BODY, [SECRET])
    assert Webhook(SECRET).verify(BODY, headers) == {
        "type": "checkin.accepted",
        "timestamp": "2026-05-15T00:30:00Z",
        "data": {"name": "Zoë"},
    }


def test_rotation_signature_verifies_with_theirs_for_either_secret() -> None:
    now = int(time.time())
    headers = signature_headers(MSG_ID, now, BODY, [SECRET, NEW_SECRET])
    Webhook(SECRET).verify(BODY, headers)
    Webhook(NEW_SECRET).verify(BODY, headers)
    with pytest.raises(TheirError):
        Webhook(new_secret(b"\7" * 32)).verify(BODY, headers)


@given(
    msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s),
    body=st.text(max_size=200),
    raw=st.binary(min_size=32, max_size=32),
)
def test_agrees_with_reference_on_arbitrary_messages(msg_id: str, body: str, raw: bytes) -> None:
    secret = new_secret(raw)
    when = datetime.fromtimestamp(NOW, tz=UTC)
    assert sign(msg_id, NOW, body.encode(), [secret]) == Webhook(secret).sign(msg_id, when, body)


# --- verification -----------------------------------------------------------------------------


def test_rotation_with_two_secrets_verifies_with_either() -> None:
    headers = signature_headers(MSG_ID, NOW, BODY, [SECRET, NEW_SECRET])
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(headers, BODY, SECRET, now=NOW)
    verify(headers, BODY, NEW_SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, new_secret(b"\7" * 32), now=NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in signature_headers(MSG_ID, NOW, BODY, [SECRET]).items()}
    assert "Webhook-Signature" in headers
    verify(headers, BODY, SECRET, now=NOW)


def test_unknown_versions_and_junk_signatures_are_skipped() -> None:
    good = sign(MSG_ID, NOW, BODY, [SECRET])
    headers = signature_headers(MSG_ID, NOW, BODY, [SECRET])
    headers["webhook-signature"] = f"v1a,xyz v2,{good[3:]} v1,!!! nocomma {good}"
    verify(headers, BODY, SECRET, now=NOW)
    headers["webhook-signature"] = f"v2,{good[3:]}"
    with pytest.raises(WebhookVerificationError):
        verify(headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (NOW, True),
        (NOW + 300, True),  # 5 minutes late: still fine
        (NOW + 301, False),  # too old
        (NOW - 300, True),
        (NOW - 301, False),  # too new (sender's clock ahead)
    ],
)
def test_timestamp_tolerance_both_directions(now: int, ok: bool) -> None:
    headers = signature_headers(MSG_ID, NOW, BODY, [SECRET])
    if ok:
        verify(headers, BODY, SECRET, now=now)
    else:
        with pytest.raises(WebhookVerificationError, match=r"too (old|new)"):
            verify(headers, BODY, SECRET, now=now)


def test_custom_tolerance() -> None:
    headers = signature_headers(MSG_ID, NOW, BODY, [SECRET])
    verify(headers, BODY, SECRET, now=NOW + 3_600, tolerance=3_600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(headers, BODY, SECRET, now=NOW + 61, tolerance=60)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h, b: (h, b + b" "), "no matching signature"),
        (lambda h, b: (h, b.replace(b"accepted", b"denied")), "no matching signature"),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "no matching signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), "no matching signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "webhook-id"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
            "webhook-signature",
        ),
        (lambda h, b: ({**h, "webhook-timestamp": ""}, b), "webhook-timestamp"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "invalid webhook-timestamp"),
        (lambda h, b: ({**h, "webhook-timestamp": "-5"}, b), "invalid webhook-timestamp"),
        (lambda h, b: ({**h, "webhook-signature": ""}, b), "webhook-signature"),
    ],
)
def test_tampered_or_incomplete_webhooks_fail(tamper: object, message: str) -> None:
    headers, body = tamper(signature_headers(MSG_ID, NOW, BODY, [SECRET]), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=message):
        verify(headers, body, SECRET, now=NOW)
