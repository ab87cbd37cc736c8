"""Fuzz the ``X-Request-Id`` parser: any header text is accepted as ``(client, seq)`` or rejected
with ``InvalidRequestId`` (400), and an accepted id is exactly what the client sent."""

from __future__ import annotations

from hypothesis import example, given, strategies as st

from raftkv.errors import InvalidRequestId
from raftkv.server.app import parse_request_id

header_text = st.text(st.characters(codec="latin-1"), max_size=200) | st.text(max_size=200)


@example("a:\u00b2")  # superscript two: str.isdigit() but not int() -> was a 500
@example("a:\u0663")  # Arabic-Indic three: was silently read as seq 3
@example("a:1\u00a0")
@given(header_text)
def test_any_header_text(raw: str) -> None:
    try:
        client, seq = parse_request_id(raw)
    except InvalidRequestId as err:
        assert err.status == 400 and str(err)
        return
    assert client is not None and seq is not None
    assert 1 <= len(client) <= 128 and client.isprintable()
    assert not any(c.isspace() for c in client)
    assert 0 <= seq < 10**18
    seq_text = raw.strip().rpartition(":")[2]
    assert raw.strip() == f"{client}:{seq_text}" and seq_text.isascii() and int(seq_text) == seq
    assert parse_request_id(f"{client}:{seq}") == (client, seq)


@given(
    st.text(
        st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1, max_size=128
    ),
    st.integers(0, 10**18 - 1),
)
def test_valid_ids_round_trip(client: str, seq: int) -> None:
    assert parse_request_id(f"{client}:{seq}") == (client, seq)


def test_absent_header_is_no_id() -> None:
    assert parse_request_id(None) == (None, None)
