"""Prefixed resource ids round-trip and reject anything that is not one."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import ids
from shared.ids import base32_decode, base32_encode, id_bytes, make_id


def test_attendee_id_is_prefix_and_26_lowercase_base32_chars() -> None:
    resource_id = make_id(ids.ATTENDEE, bytes(range(16)))
    prefix, body = resource_id.split("_")
    assert prefix == "att"
    assert len(body) == 26
    assert set(body) <= set("abcdefghijklmnopqrstuvwxyz234567")


def test_prefix_constants_match_the_spec() -> None:
    expected = {"org", "key", "evt", "tt", "zone", "cp", "att", "dev", "cfl", "we", "msg", "dlv"}
    assert expected == ids.PREFIXES


@given(prefix=st.sampled_from(sorted(ids.PREFIXES)), raw=st.binary(min_size=1, max_size=40))
def test_round_trip(prefix: str, raw: bytes) -> None:
    assert id_bytes(make_id(prefix, raw), prefix) == raw


@pytest.mark.parametrize(
    ("resource_id", "prefix"),
    [
        ("", "att"),
        ("att_", "att"),
        ("att", "att"),
        ("evt_aaaaaaaaaaaaaaaaaaaaaaaaaa", "att"),  # other prefix
        ("att_AAAAAAAAAAAAAAAAAAAAAAAAAA", "att"),  # upper case
        ("att_aaaaaaaaaaaaaaaaaaaaaaaaa1", "att"),  # 1 is not base32
        ("att_aaaaaaaaaaaaaaaaaaaaaaaaa=", "att"),  # padding
        ("att_aaa", "att"),  # impossible length
        ("att_aaaaaaaaaaaaaaaaaaaaaaaaab", "att"),  # unused trailing bits set
        ("att_" + "a" * 500, "att"),  # absurdly long
        ("att_aaaa aaaa", "att"),
    ],
)
def test_bad_ids_raise_value_error(resource_id: str, prefix: str) -> None:
    with pytest.raises(ValueError):
        id_bytes(resource_id, prefix)


@pytest.mark.parametrize(
    ("prefix", "raw"), [("", b"x"), ("Att", b"x"), ("a_b", b"x"), ("att", b"")]
)
def test_make_id_rejects_bad_input(prefix: str, raw: bytes) -> None:
    with pytest.raises(ValueError):
        make_id(prefix, raw)


@given(st.text(max_size=60))
def test_id_bytes_on_any_text_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        id_bytes(text, "att")


@given(st.binary(min_size=1, max_size=120))
def test_base32_matches_rfc4648_and_round_trips(raw: bytes) -> None:
    text = base32_encode(raw)
    assert text == base64.b32encode(raw).decode().rstrip("=")
    assert base32_decode(text) == raw


@pytest.mark.parametrize(
    "text",
    ["", "nbuq", "NBUQ=", "NBU", "N", "NBUR", "NB UQ", "NB1Q", "É"],
)
def test_base32_decode_is_strict(text: str) -> None:
    # lower case, padding, impossible length, set unused bits ("NBUR"), foreign characters
    with pytest.raises(ValueError):
        base32_decode(text)


@given(st.binary(max_size=200))
def test_fast_base32_matches_the_standard_library(raw: bytes) -> None:
    assert base32_encode(raw) == base64.b32encode(raw).decode().rstrip("=")
