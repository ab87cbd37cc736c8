"""Record payload encoding round-trips and rejects malformed payloads."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from raftkv.raft.types import Entry, EntryKind, HardState
from raftkv.storage.records import (
    RecordError,
    decode_batch,
    decode_snap,
    decode_state,
    encode_batch,
    encode_snap,
    encode_state,
)

hard_states = st.builds(
    HardState,
    term=st.integers(0, 2**63),
    voted_for=st.none() | st.text(max_size=20),
    commit=st.integers(0, 2**63),
)
entries = st.lists(
    st.builds(
        Entry,
        index=st.integers(1, 2**63),
        term=st.integers(1, 2**63),
        kind=st.sampled_from(list(EntryKind)),
        data=st.binary(max_size=50),
    ),
    max_size=10,
)


@given(hs=st.none() | hard_states, es=entries)
def test_batch_round_trip(hs: HardState | None, es: list[Entry]) -> None:
    b = decode_batch(b"".join(encode_batch(hs, es)))
    assert b.hard_state == hs and b.entries == es


@given(hs=hard_states, i=st.integers(0, 2**63), t=st.integers(0, 2**63))
def test_state_and_snap_round_trip(hs: HardState, i: int, t: int) -> None:
    s = decode_state(encode_state(hs, i, t))
    assert (s.hard_state, s.snap_index, s.snap_term) == (hs, i, t)
    m = decode_snap(encode_snap(i, t))
    assert (m.index, m.term) == (i, t)


def test_malformed_payloads() -> None:
    good = b"".join(encode_batch(HardState(term=1), [Entry(index=1, term=1, data=b"abc")]))
    for bad in (good[:-1], good + b"\0", b"\x02" + good[1:], b""):
        with pytest.raises(RecordError):
            decode_batch(bad)
    with pytest.raises(RecordError, match="kind"):
        decode_batch(b"".join(encode_batch(None, [Entry(index=1, term=1)]))[:-5] + b"\x09\0\0\0\0")
    with pytest.raises(RecordError):
        decode_state(encode_state(HardState(), 1, 1)[:-1])
    with pytest.raises(RecordError):
        decode_snap(b"123")
