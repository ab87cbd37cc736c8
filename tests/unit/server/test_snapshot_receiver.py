"""SnapshotReceiver (snapshot_stream.py) without HTTP: chunks assembled on disk, resume, a
complete file delivered as an InstallSnapshot with meta only and kept until adopted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from raftkv.errors import BadRequest
from raftkv.raft.messages import InstallSnapshot
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.snapshot_stream import ChunkRejected, SnapshotReceiver, staged_path
from raftkv.storage.snapshot import encode_snapshot

CHUNK = 1000


def blob(index: int) -> bytes:
    meta = SnapshotMeta(index=index, term=2, members=("a", "b"))
    return encode_snapshot(Snapshot(meta=meta, data=bytes(range(256)) * 20))


def headers(index: int, offset: int, size: int) -> dict[str, Any]:
    return {
        "X-Raftkv-From": "a",
        "X-Raftkv-Term": "3",
        "X-Raftkv-Snapshot-Index": str(index),
        "X-Raftkv-Snapshot-Term": "2",
        "X-Raftkv-Snapshot-Offset": str(offset),
        "X-Raftkv-Snapshot-Size": str(size),
    }


def send_all(rx: SnapshotReceiver, index: int, data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for off in range(0, len(data), CHUNK):
        out = rx.chunk(headers(index, off, len(data)), data[off : off + CHUNK])
    return out


def test_complete_transfer_is_delivered_and_kept_across_a_new_one(tmp_path: Path) -> None:
    got: list[InstallSnapshot] = []
    rx = SnapshotReceiver("b", lambda: str(tmp_path), got.append)
    first = blob(10)
    assert send_all(rx, 10, first) == {"received": len(first), "complete": True}
    assert len(got) == 1 and got[0].snapshot.data == b"" and got[0].term == 3
    meta = got[0].snapshot.meta
    assert (meta.index, meta.term, meta.members) == (10, 2, ("a", "b"))
    path = staged_path(str(tmp_path), meta)
    assert Path(path).read_bytes() == first
    second = blob(20)
    rx.chunk(headers(20, 0, len(second)), second[:CHUNK])  # a newer transfer starts
    assert os.path.exists(path)  # the delivered file waits for the driver


def test_resume_and_refusals(tmp_path: Path) -> None:
    rx = SnapshotReceiver("b", lambda: str(tmp_path), lambda m: None)
    data = blob(10)
    with pytest.raises(ChunkRejected) as info:
        rx.chunk(headers(10, CHUNK, len(data)), data[CHUNK : 2 * CHUNK])
    assert info.value.received == 0 and info.value.status == 409
    rx.chunk(headers(10, 0, len(data)), data[:CHUNK])
    rx.chunk(headers(10, CHUNK, len(data)), data[CHUNK : 2 * CHUNK])
    with pytest.raises(ChunkRejected) as info:  # a sender starting over learns where to resume
        rx.chunk(headers(10, 0, len(data)), data[:CHUNK])
    assert info.value.received == 2 * CHUNK and info.value.payload()["received"] == 2 * CHUNK
    with pytest.raises(BadRequest):  # the sender's size disagrees with the header
        rx.chunk(headers(10, 2 * CHUNK, len(data) + 1), data[2 * CHUNK : 3 * CHUNK])
    with pytest.raises(BadRequest):
        rx.chunk({"X-Raftkv-From": "a"}, b"x")
    damaged = bytearray(data)
    damaged[-10] ^= 1
    with pytest.raises(BadRequest, match="checksum"):
        send_all(rx, 30, bytes(damaged))
