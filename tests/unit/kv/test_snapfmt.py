"""KV snapshot data format v3 (raftkv/kv/snapfmt.py): streamed records, blocks larger than
one read, non-ASCII keys and values, and damage refused with SnapshotDecodeError."""

from __future__ import annotations

import io

import pytest

from raftkv.kv import Command, KVStateMachine, Op, encode_command
from raftkv.kv.snapfmt import BLOCK
from raftkv.kv.statemachine import SnapshotDecodeError


def loaded(n: int, value_bytes: int = 100) -> KVStateMachine:
    sm = KVStateMachine()
    with sm.lock:
        for i in range(1, n + 1):
            key = f"k{i}-é" if i % 7 == 0 else f"k{i}"
            value = ("ü" if i % 5 == 0 else "v") * value_bytes
            sm.apply(i, 1, encode_command(Command(op=Op.PUT, key=key, value=value)))
    return sm


def test_round_trip_across_blocks_keeps_values_indexes_and_order() -> None:
    sm = loaded(20_000)  # ~2.5 MB: several read blocks, records split across them
    blob = sm.snapshot()
    assert len(blob) > 2 * BLOCK
    other = KVStateMachine()
    other.restore_stream(io.BytesIO(blob), len(blob))
    assert len(other) == 20_000 and other.applied_index == 20_000
    assert other.get("k14-é") == ("v" * 100, 14) and other.get("k10") == ("ü" * 100, 10)
    assert other.snapshot() == blob and other.content_hash() == sm.content_hash()


def test_view_is_a_point_in_time_copy() -> None:
    sm = loaded(10)
    with sm.lock:
        view = sm.snapshot_view()
        sm.apply(11, 1, encode_command(Command(op=Op.PUT, key="late", value="x")))
    out = io.BytesIO()
    view.write(out)
    again = KVStateMachine()
    again.restore(out.getvalue())
    assert again.get("late") is None and len(again) == 10 and again.applied_index == 10


def test_writes_after_a_view_copy_the_frozen_shards_and_leave_the_view_alone() -> None:
    sm = loaded(2000)
    before_hash = sm.content_hash()
    with sm.lock:
        view = sm.snapshot_view()
        for i in range(1, 2001, 3):  # overwrite, delete and add across every shard
            sm.apply(2000 + i, 1, encode_command(Command(op=Op.DELETE, key=f"k{i}")))
            sm.apply(2001 + i, 1, encode_command(Command(op=Op.PUT, key=f"k{i + 1}", value="n")))
            sm.apply(2002 + i, 1, encode_command(Command(op=Op.PUT, key=f"new{i}", value="a")))
    out = io.BytesIO()
    view.write(out)
    frozen = KVStateMachine()
    frozen.restore(out.getvalue())
    assert frozen.content_hash() == before_hash and len(frozen) == 2000
    assert frozen.get("k2") == ("v" * 100, 2) and frozen.get("new1") is None
    assert sm.get("k2") == ("n", 2002) and sm.get("k1") is None and sm.get("new1") == ("a", 2003)
    keys = {f"k{i}-é" if i % 7 == 0 else f"k{i}" for i in range(1, 2001)}
    for i in range(1, 2001, 3):
        keys.discard(f"k{i}")
        keys |= {f"k{i + 1}", f"new{i}"}
    assert len(sm) == len(keys)


@pytest.mark.parametrize("cut", [1, 5, 50, 1000])
def test_truncated_or_damaged_data_is_refused(cut: int) -> None:
    blob = loaded(100).snapshot()
    sm = KVStateMachine()
    with pytest.raises(SnapshotDecodeError):
        sm.restore(blob[:-cut])
    assert len(sm) == 0  # nothing half-restored
    with pytest.raises(SnapshotDecodeError):
        sm.restore(blob[:8] + b"\xff\xff\xff\x7f" + blob[12:])  # meta length beyond the data
