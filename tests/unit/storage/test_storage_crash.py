"""Crash and corruption: torn tails are cut (exactly the fully written records survive), any
other damage raises StorageCorrupt naming the file and the offset of the damaged record."""

from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

import pytest

from raftkv.raft.types import Entry
from raftkv.storage import Storage, StorageCorrupt
from raftkv.storage.snapshot import write_snapshot
from tests.unit.storage.storage_testutil import SMALL_SEGMENT, ents, hs, segments, snap

SEGMENT_HEADER = 24
FRAME = 16


def record_offsets(path: str) -> list[tuple[int, int]]:
    """(start, end) of every record, parsed independently of the code under test."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    off = SEGMENT_HEADER
    while off < len(data):
        (length,) = struct.unpack_from("<I", data, off)
        out.append((off, off + FRAME + length))
        off += FRAME + length
    assert off == len(data)
    return out


def build(d: str) -> list[list[Entry]]:
    """A log of several saves; returns the batches in order."""
    batches = [ents(1, 5, term=1, size=20), ents(6, 6, term=1, size=20), ents(7, 9, term=2)]
    with Storage.open(d) as st:
        st.save(hs(1, "a"), batches[0])
        st.save(None, batches[1])
        st.save(hs(2, "b", 6), batches[2])
    return batches


def test_cut_at_every_offset_of_the_last_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = str(tmp_path / "base")
    batches = build(base)
    seg = segments(base)[0]
    start, end = record_offsets(seg)[-1]
    with open(seg, "rb") as f:
        full = f.read()
    assert end == len(full)
    before = batches[0] + batches[1]
    for cut in range(start, end + 1):
        d = str(tmp_path / f"cut{cut}")
        shutil.copytree(base, d)
        with open(segments(d)[0], "r+b") as f:
            f.truncate(cut)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="raftkv.storage"):
            st = Storage.open(d)
        rec = st.recovered
        if cut == end:
            assert rec.entries == before + batches[2]
            assert rec.hard_state == hs(2, "b", 6)
            assert not caplog.records
        else:
            assert rec.entries == before, cut
            assert rec.hard_state == hs(1, "a"), cut
            if cut > start:
                assert any("torn tail" in r.getMessage() for r in caplog.records), cut
            assert os.path.getsize(segments(d)[0]) == start  # the torn bytes are gone
            # writing after the repair works and survives another reopen
            st.save(None, ents(7, 7, term=3))
            st.close()
            st = Storage.open(d)
            assert st.recovered.entries == [*before, *ents(7, 7, term=3)]
        st.close()
        shutil.rmtree(d)


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    d = str(tmp_path)
    batches = build(d)
    with open(segments(d)[0], "ab") as f:
        f.write(b"\0" * 3000)
    with Storage.open(d) as st:
        assert st.recovered.entries == batches[0] + batches[1] + batches[2]


def test_final_record_with_an_unwritten_sector_is_torn(tmp_path: Path) -> None:
    d = str(tmp_path)
    with Storage.open(d) as st:
        st.save(hs(1), ents(1, 3, term=1))
        st.save(None, ents(4, 20, term=1, size=200))  # ~4 KiB: spans several sectors
    seg = segments(d)[0]
    start, end = record_offsets(seg)[-1]
    assert end - start > 2048
    sector = (start // 512 + 2) * 512
    with open(seg, "r+b") as f:
        f.seek(sector)
        f.write(b"\0" * 512)
    with Storage.open(d) as st:
        assert st.recovered.entries == ents(1, 3, term=1)


def test_bit_flip_anywhere_is_corruption_at_that_record(tmp_path: Path) -> None:
    base = str(tmp_path / "base")
    build(base)
    seg = segments(base)[0]
    with open(seg, "rb") as f:
        full = f.read()
    records = record_offsets(seg)
    d = str(tmp_path / "flip")
    shutil.copytree(base, d)
    target = segments(d)[0]
    for pos in range(len(full)):
        expect = 0 if pos < SEGMENT_HEADER else next(s for s, e in records if s <= pos < e)
        for bit in (0, 7):
            data = bytearray(full)
            data[pos] ^= 1 << bit
            with open(target, "wb") as f:
                f.write(data)
            with pytest.raises(StorageCorrupt) as exc:
                Storage.open(d).close()
            assert exc.value.path == target, pos
            assert exc.value.offset == expect, (pos, exc.value)
            assert str(expect) in str(exc.value) and target in str(exc.value)


def test_torn_record_in_an_older_segment_is_corruption(tmp_path: Path) -> None:
    d = str(tmp_path)
    with Storage.open(d, segment_bytes=SMALL_SEGMENT) as st:
        for lo in range(1, 300, 10):
            st.save(None, ents(lo, lo + 9, size=64))
    first = segments(d)[0]
    start, _end = record_offsets(first)[-1]
    with open(first, "r+b") as f:
        f.truncate(start + 5)
    with pytest.raises(StorageCorrupt) as exc:
        Storage.open(d)
    assert exc.value.path == first and exc.value.offset == start
    assert "not the newest" in exc.value.why


def test_truncated_segment_header_is_corruption(tmp_path: Path) -> None:
    d = str(tmp_path)
    build(d)
    with open(segments(d)[0], "r+b") as f:
        f.truncate(10)
    with pytest.raises(StorageCorrupt, match="header truncated"):
        Storage.open(d)


@pytest.mark.parametrize("keep_log", [True, False])
def test_crash_between_snapshot_file_and_wal_mark(tmp_path: Path, keep_log: bool) -> None:
    """The snapshot file is durable but its SNAP mark never reached the WAL."""
    d = str(tmp_path)
    with Storage.open(d) as st:
        st.save(hs(2), ents(1, 10, term=2))
    s = snap(6, 2) if keep_log else snap(6, 3)
    write_snapshot(os.path.join(d, "snap"), s)
    with open(os.path.join(d, "snap", "leftover.snap.tmp"), "wb") as f:
        f.write(b"partial")
    expected = ents(7, 10, term=2) if keep_log else []
    for _ in range(2):  # the first open completes the mark; the second sees it in the WAL
        with Storage.open(d) as st:
            assert st.recovered.snapshot == s
            assert st.recovered.entries == expected
            assert st.last_index == (10 if keep_log else 6)
    assert not os.path.exists(os.path.join(d, "snap", "leftover.snap.tmp"))


def test_leftover_rotation_tmp_segment_is_removed(tmp_path: Path) -> None:
    d = str(tmp_path)
    batches = build(d)
    tmp = os.path.join(d, "wal", "0000000000000002.wal.tmp")
    with open(tmp, "wb") as f:
        f.write(b"RKVWAL")
    with Storage.open(d) as st:
        assert st.recovered.entries == batches[0] + batches[1] + batches[2]
    assert not os.path.exists(tmp)
