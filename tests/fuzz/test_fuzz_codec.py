"""Fuzz ``decode_message`` (raftkv/raft/codec.py), the first code a peer's bytes reach.

Property: for ANY input it returns a message or raises ``MessageDecodeError`` with a reason —
nothing else — and whatever it accepts re-encodes to the same document (nothing is silently
dropped or coerced)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, strategies as st

from raftkv.raft import Message, MessageDecodeError, decode_message, encode_message
from tests.fuzz.strategies import json_values, messages, mutated


def _decodes_or_rejects(obj: Any) -> Message | None:
    try:
        msg = decode_message(obj)
    except MessageDecodeError as err:
        assert str(err)
        return None
    assert encode_message(msg) == obj, "accepted input must re-encode to itself"
    return msg


@given(messages())
def test_every_valid_message_round_trips(msg: Message) -> None:
    wire = json.loads(json.dumps(encode_message(msg)))
    assert decode_message(wire) == msg


@given(st.data(), messages())
def test_mutated_messages_are_rejected_or_exact(data: st.DataObject, msg: Message) -> None:
    doc = json.loads(json.dumps(encode_message(msg)))
    _decodes_or_rejects(data.draw(mutated(doc)))


@given(json_values)
def test_arbitrary_json(obj: Any) -> None:
    _decodes_or_rejects(obj)


@given(
    st.dictionaries(
        st.sampled_from(
            ["v", "type", "src", "dst", "term", "entries", "snapshot", "commit", "context", "index"]
        ),
        json_values,
        max_size=8,
    ),
    st.sampled_from(["RequestVote", "AppendEntries", "InstallSnapshot", "Heartbeat"]),
)
def test_plausible_shapes(obj: dict[str, Any], mtype: str) -> None:
    obj = {**obj, "v": 1, "type": mtype}
    _decodes_or_rejects(obj)
