"""Snapshot files and streams: a leader's file sent in chunks, received by the FileAssembler
the chunk receiver uses, verified, adopted; damage of every kind refused."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from raftkv.storage import SnapshotStreamError, Storage, StorageCorrupt
from raftkv.storage.snapshot import (
    RECV_TMP_SUFFIX,
    FileAssembler,
    encode_snapshot,
    read_snapshot,
    snapshot_name,
    write_snapshot,
)
from tests.unit.storage.storage_testutil import ents, hs, snap, snapshots

BIG = bytes(range(256)) * 4099  # ~1 MiB, not a multiple of any chunk size used


def _receive(path: str, chunks: list[bytes], asm: FileAssembler | None = None) -> FileAssembler:
    """Feed ``chunks`` to a FileAssembler at ``path`` as the chunk receiver does (offsets)."""
    asm = asm or FileAssembler(path)
    for chunk in chunks:
        asm.write(asm.received, chunk)
    return asm


@pytest.mark.parametrize("chunk_size", [1 << 16, 4096, 1000])
def test_stream_from_leader_disk_to_follower(tmp_path: Path, chunk_size: int) -> None:
    leader = Storage.open(str(tmp_path / "leader"))
    leader.save(hs(2), ents(1, 10, term=2))
    s = snap(10, 2, data=BIG, members=("raft-0", "raft-1", "raft-2"))
    leader.save_snapshot(s)
    src = leader.snapshot_path()
    assert src is not None
    blob = Path(src).read_bytes()
    chunks = [blob[i : i + chunk_size] for i in range(0, len(blob), chunk_size)]
    assert len(chunks) > 1 and blob == encode_snapshot(s)
    leader.close()

    follower = Storage.open(str(tmp_path / "follower"))
    follower.save(hs(1), ents(1, 3, term=1))
    tmp = os.path.join(follower.snap_dir, snapshot_name(10, 2) + RECV_TMP_SUFFIX)
    asm = _receive(tmp, chunks)
    layout = asm.finish()
    asm.close()
    assert follower.adopt_snapshot_file(tmp, layout.meta) is True
    follower.close()
    follower = Storage.open(str(tmp_path / "follower"))
    assert follower.recovered.snapshot == s
    assert follower.recovered.entries == []
    follower.close()


def test_receiver_rejects_damage(tmp_path: Path) -> None:
    blob = encode_snapshot(snap(7, 3, data=b"abc" * 1000))
    tmp = str(tmp_path / "s.recv.tmp")

    def fresh(**kw: int) -> FileAssembler:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return FileAssembler(tmp, **kw)

    asm = fresh()
    asm.write(0, blob[:100])
    with pytest.raises(SnapshotStreamError, match="offset"):
        asm.write(200, blob[200:300])  # a lost chunk
    asm.close()

    asm = _receive(tmp, [blob[:-1]], fresh())
    with pytest.raises(SnapshotStreamError, match="incomplete"):
        asm.finish()
    asm.close()

    asm = fresh()
    with pytest.raises(SnapshotStreamError, match="declares"):
        asm.write(0, blob + b"x")
    asm.close()

    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x01
    asm = _receive(tmp, [bytes(damaged)], fresh())
    with pytest.raises(SnapshotStreamError, match="checksum"):
        asm.finish()
    asm.close()

    asm = fresh()
    with pytest.raises(SnapshotStreamError, match="magic"):
        asm.write(0, b"X" * 100)
    asm.close()

    asm = fresh(max_bytes=100)
    with pytest.raises(SnapshotStreamError, match="exceeds"):
        asm.write(0, blob[:60])
    asm.close()


def test_damaged_stream_installs_nothing(tmp_path: Path) -> None:
    blob = bytearray(encode_snapshot(snap(5, 1, data=b"z" * 500)))
    blob[300] ^= 0x40
    with Storage.open(str(tmp_path)) as st:
        tmp = os.path.join(st.snap_dir, snapshot_name(5, 1) + RECV_TMP_SUFFIX)
        asm = _receive(tmp, [bytes(blob[:200]), bytes(blob[200:])])
        with pytest.raises(SnapshotStreamError):
            asm.finish()
        asm.discard()
        assert st.snapshot_meta is None
    assert snapshots(str(tmp_path)) == []


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
