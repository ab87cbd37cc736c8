"""Fuzz the KV machine's decoders: a log entry's command bytes and a snapshot's state bytes come
from peers (AppendEntries / InstallSnapshot). Any bytes decode or raise the module's own error
(``CommandDecodeError`` / ``SnapshotDecodeError``), never anything that would kill the driver."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, strategies as st

from raftkv.kv import KVStateMachine
from raftkv.kv.commands import CommandDecodeError, decode_command
from raftkv.kv.statemachine import SnapshotDecodeError
from tests.fuzz.strategies import json_values

docs = json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=100)


@example(b"[" * 100_000)
@given(
    docs
    | st.fixed_dictionaries(
        {"v": st.just(1), "op": st.sampled_from(["put", "delete", "x"]), "key": json_values},
        optional={
            "value": json_values,
            "prev": json_values,
            "client": json_values,
            "seq": json_values,
        },
    ).map(lambda d: json.dumps(d).encode())
)
def test_decode_command(data: bytes) -> None:
    try:
        decode_command(data)
    except CommandDecodeError as err:
        assert str(err)


def _state(d: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, **d}).encode()


@example(b"{" * 100_000)
@given(
    docs
    | st.fixed_dictionaries(
        {"data": json_values, "sessions": json_values},
        optional={"applied_index": json_values, "applied_term": json_values},
    ).map(_state)
)
def test_restore(blob: bytes) -> None:
    sm = KVStateMachine()
    try:
        sm.restore(blob)
    except SnapshotDecodeError as err:
        assert str(err)
