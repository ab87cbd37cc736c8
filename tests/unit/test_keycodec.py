"""The key codec (raftkv/keycodec.py): round trips, the exact wire form, strict decoding."""

from __future__ import annotations

import string
from urllib.parse import unquote

import pytest
from hypothesis import given, strategies as st

from raftkv.errors import InvalidKey, InvalidQuery
from raftkv.keycodec import (
    MAX_KEY_BYTES,
    decode_key,
    decode_query_value,
    encode_key,
    encode_query_value,
    key_path,
    validate_key,
)

UNRESERVED = set(string.ascii_letters + string.digits + "-._~")

# Keys as clients write them: any code point of any plane except lone surrogates (which UTF-8
# cannot carry), capped at the size limit, with the characters that broke forwarding mixed in.
key_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(list("/%#?+&=. ~")),
    st.sampled_from(["\U0001f600", "\U0002a6d6", "\U000e0041", "\U000ffffd", "\U0010fffd"]),
)
keys = st.text(key_chars, min_size=1, max_size=200).filter(
    lambda k: len(k.encode("utf-8")) <= MAX_KEY_BYTES
)


@given(keys)
def test_round_trip_and_wire_form(key: str) -> None:
    wire = encode_key(key)
    assert decode_key(wire) == key
    assert decode_key(wire.encode("ascii")) == key
    assert wire.isascii()
    # one path segment: nothing a URL parser, proxy or router could split, cut or normalize
    assert set(wire) <= UNRESERVED | set("%0123456789ABCDEF")
    assert wire not in (".", "..")
    assert unquote(wire, errors="strict") == key  # standard percent-decoding agrees
    assert key_path(key) == "/v1/kv/" + wire


@given(keys)
def test_a_raw_slash_is_the_same_key_as_percent_2f(key: str) -> None:
    assert decode_key(encode_key(key).replace("%2F", "/")) == key


@given(st.text(key_chars, max_size=60))
def test_query_values_round_trip_with_plus_as_space(text: str) -> None:
    wire = encode_query_value(text)
    assert "+" not in wire and "&" not in wire and "=" not in wire
    assert decode_query_value(wire) == text


@pytest.mark.parametrize(
    ("key", "wire"),
    [
        ("tag#frag", "tag%23frag"),
        ("pct%41", "pct%2541"),
        ("q?x", "q%3Fx"),
        ("ün", "%C3%BCn"),
        ("a/b", "a%2Fb"),
        ("/lead", "%2Flead"),
        ("a//b/", "a%2F%2Fb%2F"),
        ("x/../y", "x%2F..%2Fy"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("...", "..."),
        ("a b+c", "a%20b%2Bc"),
        ("exec", "exec"),
        ("~user_1.2-3", "~user_1.2-3"),
        ("\x00\n", "%00%0A"),
        ("\U0010fffd", "%F4%8F%BF%BD"),
    ],
)
def test_documented_examples(key: str, wire: str) -> None:
    assert encode_key(key) == wire
    assert decode_key(wire) == key


def test_raw_characters_stand_for_themselves() -> None:
    assert decode_key("a/b") == "a/b"
    assert decode_key("a+b") == "a+b"  # '+' is only a space in a query string
    assert decode_key("%c3%bc") == "ü"  # lower-case hex is fine
    assert decode_key(b"\xc3\xbc") == "ü"  # raw UTF-8 bytes in the target
    assert decode_key("\xc3\xbc") == "ü"  # ... as WSGI hands them (one char per byte)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("", "empty"),
        ("100%", "malformed percent-escape"),
        ("%zz", "malformed percent-escape"),
        ("a%4", "malformed percent-escape"),
        ("%FF", "not valid UTF-8"),
        ("%C3", "not valid UTF-8"),
        ("%ED%A0%80", "not valid UTF-8"),  # an encoded lone surrogate
        ("k" * (MAX_KEY_BYTES + 1), "513 bytes"),
        ("%C3%BC" * 256 + "x", "513 bytes"),
    ],
)
def test_bad_wire_forms_are_refused_never_guessed(wire: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message) as err:
        decode_key(wire)
    assert err.value.status == 400


def test_size_limit_is_in_bytes() -> None:
    assert validate_key("ü" * 256) == "ü" * 256
    assert decode_key(encode_key("k" * MAX_KEY_BYTES)) == "k" * MAX_KEY_BYTES
    for bad in ("", "k" * (MAX_KEY_BYTES + 1), "\ud800"):
        with pytest.raises(InvalidKey):
            encode_key(bad)


def test_query_value_errors_are_query_errors() -> None:
    with pytest.raises(InvalidQuery, match="prev_value has a malformed percent-escape"):
        decode_query_value("50%", what="prev_value")
    assert decode_query_value("a+b%2B%20") == "a b+ "
