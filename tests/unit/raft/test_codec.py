"""Codec: every message round-trips through JSON; malformed input is rejected with a clear text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from raftkv.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    MessageDecodeError,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
    decode_message,
    encode_message,
)

SAMPLES: list[Message] = [
    RequestVote(src="a", dst="b", term=3, last_log_index=7, last_log_term=2, pre_vote=True),
    RequestVote(src="a", dst="b", term=3, last_log_index=7, last_log_term=2, transfer=True),
    RequestVoteResponse(src="b", dst="a", term=3, granted=True, pre_vote=True),
    AppendEntries(
        src="a",
        dst="b",
        term=3,
        prev_index=4,
        prev_term=2,
        entries=(
            Entry(index=5, term=3, kind=EntryKind.NOOP),
            Entry(index=6, term=3, data=b"\x00\xffbin"),
        ),
        commit=4,
    ),
    AppendEntriesResponse(
        src="b", dst="a", term=3, index=4, reject=True, hint_index=2, hint_term=1
    ),
    AppendEntriesResponse(src="b", dst="a", term=3, index=6),
    InstallSnapshot(
        src="a",
        dst="b",
        term=3,
        snapshot=Snapshot(meta=SnapshotMeta(index=9, term=2, members=("a", "b")), data=b"state"),
    ),
    Heartbeat(src="a", dst="b", term=3, commit=5, context=12),
    HeartbeatResponse(src="b", dst="a", term=3, context=12),
    TimeoutNow(src="a", dst="b", term=3),
    ReadIndex(src="b", dst="a", term=3, request_id="r17"),
    ReadIndexResponse(src="a", dst="b", term=3, request_id="r17", index=42),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_through_json(msg: Message) -> None:
    wire = json.loads(json.dumps(encode_message(msg)))
    assert wire["v"] == 1 and wire["type"] == type(msg).__name__
    assert decode_message(wire) == msg


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_describe_is_one_line(msg: Message) -> None:
    text = msg.describe()
    assert "\n" not in text and text.startswith(f"{msg.src}->{msg.dst} {type(msg).__name__}")


def _hb() -> dict[str, Any]:
    return encode_message(Heartbeat(src="a", dst="b", term=3, commit=5))


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda d: d.update(v=2), "version"),
        (lambda d: d.update(type="Nope"), "unknown message type"),
        (lambda d: d.update(term=-1), "'term' out of range"),
        (lambda d: d.update(term=True), "'term' must be an integer"),
        (lambda d: d.update(term=1.5), "'term' must be an integer"),
        (lambda d: d.update(term=1 << 64), "'term' out of range"),
        (lambda d: d.update(src=""), "'src' must be 1..256"),
        (lambda d: d.update(dst=5), "'dst' must be a string"),
        (lambda d: d.update(extra=1), "unknown fields ['extra']"),
        (lambda d: d.pop("commit"), "missing fields ['commit']"),
    ],
)
def test_rejects_malformed_fields(mutate: Any, expect: str) -> None:
    d = _hb()
    mutate(d)
    with pytest.raises(MessageDecodeError) as ei:
        decode_message(d)
    assert expect in str(ei.value)


@pytest.mark.parametrize("obj", [None, [], "x", 3, {"v": 1}, {"type": "Heartbeat"}])
def test_rejects_non_messages(obj: object) -> None:
    with pytest.raises(MessageDecodeError):
        decode_message(obj)


def _ae() -> dict[str, Any]:
    return encode_message(SAMPLES[3])


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda d: d["entries"][0].update(data="***"), "not valid base64"),
        (lambda d: d["entries"][0].update(kind=7), "unknown entry kind"),
        (lambda d: d["entries"][0].update(index=0), "out of range"),
        (lambda d: d["entries"][1].update(index=9), "expected 6"),
        (lambda d: d["entries"][1].update(term=9), "out of order"),
        (lambda d: d["entries"][0].pop("term"), "missing keys"),
        (lambda d: d.update(entries={}), "must be a list"),
        (lambda d: d.update(prev_term=5), "above the message term"),
    ],
)
def test_rejects_malformed_entries(mutate: Any, expect: str) -> None:
    d = _ae()
    mutate(d)
    with pytest.raises(MessageDecodeError) as ei:
        decode_message(d)
    assert expect in str(ei.value)


def test_rejects_malformed_snapshot() -> None:
    d = encode_message(SAMPLES[6])
    d["snapshot"]["meta"]["members"] = ["a", 3]
    with pytest.raises(MessageDecodeError, match=r"members\[1\]"):
        decode_message(d)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(json_values)
def test_arbitrary_json_never_crashes_the_decoder(obj: object) -> None:
    try:
        out = decode_message(obj)
    except MessageDecodeError as err:
        assert str(err)  # always a readable reason
        return
    assert decode_message(encode_message(out)) == out


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(SAMPLES), st.data())
def test_field_corruption_is_rejected_or_valid(msg: Message, data: st.DataObject) -> None:
    d = encode_message(msg)
    key = data.draw(st.sampled_from(sorted(d)))
    d[key] = data.draw(json_values)
    try:
        out = decode_message(d)
    except MessageDecodeError:
        return
    assert encode_message(out)[key] == d[key] or key in {"entries", "snapshot"}
