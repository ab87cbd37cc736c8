"""Snapshot files and streams: chunked read from disk, reassembly, checksum verification."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raftkv.storage import (
    SnapshotAssembler,
    SnapshotStreamError,
    Storage,
    StorageCorrupt,
    StorageError,
    iter_snapshot_chunks,
)
from raftkv.storage.snapshot import encode_snapshot, read_snapshot, write_snapshot
from tests.unit.storage.storage_testutil import ents, hs, snap, snapshots

BIG = bytes(range(256)) * 4099  # ~1 MiB, not a multiple of any chunk size used


@pytest.mark.parametrize("chunk_size", [1 << 16, 4096, 1000])
def test_stream_from_leader_disk_to_follower(tmp_path: Path, chunk_size: int) -> None:
    leader = Storage.open(str(tmp_path / "leader"))
    leader.save(hs(2), ents(1, 10, term=2))
    s = snap(10, 2, data=BIG, members=("raft-0", "raft-1", "raft-2"))
    leader.save_snapshot(s)
    chunks = list(leader.snapshot_chunks(chunk_size=chunk_size))
    assert all(len(c) <= chunk_size for c in chunks) and len(chunks) > 1
    assert b"".join(chunks) == encode_snapshot(s)
    leader.close()

    follower = Storage.open(str(tmp_path / "follower"))
    follower.save(hs(1), ents(1, 3, term=1))
    got = follower.install_snapshot_chunks(chunks)
    assert got == s
    follower.close()
    follower = Storage.open(str(tmp_path / "follower"))
    assert follower.recovered.snapshot == s
    assert follower.recovered.entries == []
    follower.close()


def test_assembler_with_offsets_and_in_memory_chunks() -> None:
    s = snap(7, 3, data=b"abc" * 1000)
    asm = SnapshotAssembler()
    off = 0
    for chunk in iter_snapshot_chunks(s, chunk_size=333):
        asm.write(chunk, offset=off)
        off += len(chunk)
    assert asm.received == asm.expected == off
    assert asm.finish() == s


def test_assembler_rejects_damage() -> None:
    s = snap(7, 3, data=b"abc" * 1000)
    blob = encode_snapshot(s)

    asm = SnapshotAssembler()
    asm.write(blob[:100])
    with pytest.raises(SnapshotStreamError, match="offset"):
        asm.write(blob[200:300], offset=200)  # a lost chunk

    asm = SnapshotAssembler()
    asm.write(blob[:-1])
    with pytest.raises(SnapshotStreamError, match="incomplete"):
        asm.finish()

    asm = SnapshotAssembler()
    with pytest.raises(SnapshotStreamError, match="declares"):
        asm.write(blob + b"x")

    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x01
    asm = SnapshotAssembler()
    asm.write(bytes(damaged))
    with pytest.raises(SnapshotStreamError, match="checksum"):
        asm.finish()

    asm = SnapshotAssembler()
    with pytest.raises(SnapshotStreamError, match="magic"):
        asm.write(b"X" * 100)

    asm = SnapshotAssembler(max_bytes=100)
    with pytest.raises(SnapshotStreamError, match="exceeds"):
        asm.write(blob[:60])


def test_damaged_stream_installs_nothing(tmp_path: Path) -> None:
    blob = bytearray(encode_snapshot(snap(5, 1, data=b"z" * 500)))
    blob[300] ^= 0x40
    with Storage.open(str(tmp_path)) as st:
        with pytest.raises(SnapshotStreamError):
            st.install_snapshot_chunks([bytes(blob[:200]), bytes(blob[200:])])
        assert st.snapshot_meta is None
    assert snapshots(str(tmp_path)) == []


def test_no_snapshot_to_stream(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path)) as st, pytest.raises(StorageError, match="no snapshot"):
        st.snapshot_chunks()


def test_stream_survives_pruning_of_its_file(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path), keep_snapshots=1) as st:
        st.save(None, ents(1, 20))
        first = snap(5, 1, data=BIG)
        st.save_snapshot(first)
        stream = st.snapshot_chunks(chunk_size=4096)
        st.save_snapshot(snap(10, 1))  # deletes the file being streamed
        asm = SnapshotAssembler()
        for c in stream:
            asm.write(c)
        assert asm.finish() == first


def test_read_snapshot_detects_every_kind_of_damage(tmp_path: Path) -> None:
    d = str(tmp_path)
    s = snap(9, 4, data=b"q" * 2000)
    path = write_snapshot(d, s)
    assert read_snapshot(path) == s
    raw = open(path, "rb").read()  # noqa: SIM115

    def damaged(data: bytes) -> StorageCorrupt:
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(StorageCorrupt) as exc:
            read_snapshot(path)
        assert exc.value.path == path
        return exc.value

    assert "truncated" in damaged(raw[:20]).why
    assert damaged(raw[:-1]).offset == len(raw) - 1
    assert "header checksum" in damaged(raw[:20] + b"\xff" + raw[21:]).why
    flipped = bytearray(raw)
    flipped[1000] ^= 0x04
    err = damaged(bytes(flipped))
    assert "checksum mismatch" in err.why and err.offset == len(raw) - 4
    # a valid snapshot under the wrong name
    other = os.path.join(d, f"{10:020d}-{4:020d}.snap")
    with open(other, "wb") as f:
        f.write(raw)
    with pytest.raises(StorageCorrupt, match="does not match"):
        read_snapshot(other)


def test_members_round_trip_unicode(tmp_path: Path) -> None:
    s = snap(3, 1, members=("raft-ü", "raft-1"))
    assert read_snapshot(write_snapshot(str(tmp_path), s)) == s
