"""Streaming snapshot files (issue 14): written with data of unknown length, verified block by
block, received chunk by chunk with resume, adopted by Storage — always the same bytes as the
in-memory writer, so every reader (read_snapshot, backups, older nodes) reads them."""

from __future__ import annotations

import os
import random
import zlib
from pathlib import Path

import pytest

from raftkv.raft.membership import Membership
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.storage import Storage, StorageCorrupt
from raftkv.storage.snapshot import (
    FileAssembler,
    SnapshotStreamError,
    crc32_combine,
    encode_snapshot,
    open_snapshot_data,
    read_snapshot,
    verify_snapshot_file,
    write_snapshot_stream,
)
from tests.unit.storage.storage_testutil import ents, hs, snap

DATA = bytes(random.Random(7).randbytes(300_000))


def test_crc32_combine_matches_zlib() -> None:
    rng = random.Random(1)
    for _ in range(100):
        a, b = rng.randbytes(rng.randint(0, 500)), rng.randbytes(rng.randint(0, 5000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def _write_in_pieces(out: object, data: bytes = DATA) -> None:
    for off in range(0, len(data), 7777):
        out.write(data[off : off + 7777])  # type: ignore[attr-defined]


def test_stream_writer_produces_the_same_bytes_as_the_blob_writer(tmp_path: Path) -> None:
    membership = Membership(voters=("a", "b"), learners=("c",), index=3)
    meta = SnapshotMeta(index=9, term=2, members=("a", "b"), membership=membership)
    path, size = write_snapshot_stream(str(tmp_path), meta, _write_in_pieces)
    assert size == len(DATA) and path.endswith(".stream.tmp")
    final = str(tmp_path / "00000000000000000009-00000000000000000002.snap")
    os.rename(path, final)
    assert Path(final).read_bytes() == encode_snapshot(Snapshot(meta=meta, data=DATA))
    assert read_snapshot(final) == Snapshot(meta=meta, data=DATA)
    layout, f = open_snapshot_data(final)
    with f:
        assert layout.meta == meta and f.read(layout.data_len) == DATA


def test_stream_writer_removes_its_file_when_the_data_fails(tmp_path: Path) -> None:
    def boom(out: object) -> None:
        out.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_snapshot_stream(str(tmp_path), SnapshotMeta(index=1, term=1, members=("a",)), boom)
    assert os.listdir(tmp_path) == []


def test_verify_detects_every_damage(tmp_path: Path) -> None:
    meta = SnapshotMeta(index=5, term=1, members=("a",))
    path, _ = write_snapshot_stream(str(tmp_path), meta, _write_in_pieces)
    good = Path(path).read_bytes()
    target = tmp_path / "00000000000000000005-00000000000000000001.snap"
    for where in (3, 30, 60, len(good) // 2, len(good) - 2):
        bad = bytearray(good)
        bad[where] ^= 0x10
        target.write_bytes(bytes(bad))
        with pytest.raises(StorageCorrupt):
            verify_snapshot_file(str(target))
    for cut in (good[:-1], good + b"x", good[:10]):
        target.write_bytes(cut)
        with pytest.raises(StorageCorrupt):
            verify_snapshot_file(str(target))
    wrong_name = tmp_path / "00000000000000000006-00000000000000000001.snap"
    wrong_name.write_bytes(good)
    with pytest.raises(StorageCorrupt, match="name"):
        verify_snapshot_file(str(wrong_name))


def test_file_assembler_in_order_with_resume(tmp_path: Path) -> None:
    blob = encode_snapshot(snap(12, 3, data=DATA))
    path = str(tmp_path / "x.recv.tmp")
    asm = FileAssembler(path)
    chunks = [blob[i : i + 50_000] for i in range(0, len(blob), 50_000)]
    asm.write(0, chunks[0])
    asm.write(50_000, chunks[1])
    with pytest.raises(SnapshotStreamError):
        asm.write(0, chunks[0])  # a repeated chunk: refused, received tells where to go on
    assert asm.received == 100_000 and asm.expected == len(blob)
    asm.close()
    asm = FileAssembler(path)  # resumes after what is on disk
    assert asm.received == 100_000 and asm.expected == len(blob)
    for i, c in enumerate(chunks[2:], start=2):
        asm.write(i * 50_000, c)
    assert asm.complete
    layout = asm.finish()
    assert layout.meta.index == 12 and layout.data_len == len(DATA)
    asm.close()
    with pytest.raises(SnapshotStreamError):  # longer than its header says
        FileAssembler(path).write(len(blob), b"extra")


def test_file_assembler_rejects_a_damaged_stream(tmp_path: Path) -> None:
    blob = bytearray(encode_snapshot(snap(12, 3, data=DATA)))
    blob[1000] ^= 1
    asm = FileAssembler(str(tmp_path / "y.recv.tmp"))
    asm.write(0, bytes(blob))
    with pytest.raises(SnapshotStreamError, match="checksum"):
        asm.finish()
    with pytest.raises(SnapshotStreamError):
        FileAssembler(str(tmp_path / "z.recv.tmp")).write(0, b"NOTASNAP" + bytes(60))


def test_storage_adopts_a_streamed_file_and_opens_without_loading_data(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path / "d"))
    st.save(hs(2), ents(1, 20, term=2))
    meta = SnapshotMeta(index=15, term=2, members=("a", "b", "c"))
    path, _ = write_snapshot_stream(st.snap_dir, meta, _write_in_pieces)
    assert st.adopt_snapshot_file(path, meta) is True
    assert st.snapshot_path() is not None and not os.path.exists(path)
    assert st.first_index == 16 and st.last_index == 20  # the log after it is kept
    old_meta = SnapshotMeta(index=10, term=2, members=("a",))
    older, _ = write_snapshot_stream(st.snap_dir, old_meta, _write_in_pieces)
    assert st.adopt_snapshot_file(older, old_meta) is False
    assert not os.path.exists(older)
    st.close()
    lean = Storage.open(str(tmp_path / "d"), snapshot_data=False)
    rec = lean.recovered
    assert rec.snapshot is not None and rec.snapshot.meta == meta and rec.snapshot.data == b""
    assert [e.index for e in rec.entries] == list(range(16, 21))
    lean.close()
    full = Storage.open(str(tmp_path / "d"))  # the default still loads it (backup/restore tools)
    assert full.recovered.snapshot == Snapshot(meta=meta, data=DATA)
    full.close()
