"""Storage API: open/save/recover, truncation, snapshots (Raft §7), rotation, pruning, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raftkv.raft.types import Entry, EntryKind, HardState
from raftkv.storage import (
    Storage,
    StorageClosed,
    StorageCorrupt,
    StorageLocked,
)
from tests.unit.storage.storage_testutil import (
    SMALL_SEGMENT,
    ents,
    hs,
    pairs,
    reopen,
    segments,
    snap,
    snapshots,
)


def test_fresh_directory_is_empty(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path / "d")) as st:
        rec = st.recovered
        assert rec.hard_state == HardState()
        assert rec.snapshot is None
        assert rec.entries == []
        assert (st.first_index, st.last_index) == (1, 0)


def test_save_then_reopen_returns_everything(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(3, "raft-1", 2), ents(1, 64, term=3))
    st.save(None, [Entry(index=65, term=3, kind=EntryKind.NOOP)])
    st = reopen(st)
    rec = st.recovered
    assert rec.hard_state == hs(3, "raft-1", 2)
    assert rec.entries == [*ents(1, 64, term=3), Entry(index=65, term=3, kind=EntryKind.NOOP)]
    assert st.last_index == 65
    st.close()


def test_hard_state_only_save_and_none_vote(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(1, "a"), [])
    st.save(hs(2, None, 0), [])
    st = reopen(st)
    assert st.recovered.hard_state == hs(2, None, 0)
    st.close()


def test_empty_save_is_a_noop(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    size = os.path.getsize(segments(str(tmp_path))[0])
    st.save(None, [])
    assert os.path.getsize(segments(str(tmp_path))[0]) == size
    st.close()


def test_conflicting_suffix_is_replaced(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(1), ents(1, 10, term=1))
    st.save(hs(2), ents(6, 7, term=2))
    assert st.last_index == 7
    assert st.term_at(5) == 1 and st.term_at(6) == 2 and st.term_at(8) is None
    st = reopen(st)
    assert st.recovered.entries == ents(1, 5, term=1) + ents(6, 7, term=2)
    st.close()


def test_invalid_batches_are_rejected(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path)) as st:
        st.save(None, ents(1, 3, term=2))
        with pytest.raises(ValueError, match="gap"):
            st.save(None, ents(5, 6, term=2))
        with pytest.raises(ValueError, match="contiguous"):
            st.save(None, [*ents(4, 4, term=2), *ents(6, 6, term=2)])
        with pytest.raises(ValueError, match="term"):
            st.save(None, ents(4, 4, term=1))
        assert st.last_index == 3


def test_compaction_snapshot_keeps_the_log_after_it(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(1), ents(1, 20, term=1))
    st.save_snapshot(snap(10, 1))
    assert st.first_index == 11 and st.last_index == 20
    st = reopen(st)
    rec = st.recovered
    assert rec.snapshot == snap(10, 1)
    assert rec.entries == ents(11, 20, term=1)
    st.close()


def test_installed_snapshot_discards_a_conflicting_log(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(1), ents(1, 20, term=1))
    st.save_snapshot(snap(15, 2))  # entry 15 has term 1 here: the whole log goes (Raft §7)
    assert st.last_index == 15 and st.term_at(15) == 2
    st.save(hs(2), ents(16, 17, term=2))
    st = reopen(st)
    assert st.recovered.entries == ents(16, 17, term=2)
    st.close()


def test_snapshot_beyond_the_log(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(hs(1), ents(1, 5, term=1))
    st.save_snapshot(snap(100, 3))
    st = reopen(st)
    assert st.recovered.entries == [] and st.last_index == 100
    st.save(None, ents(101, 102, term=3))
    st = reopen(st)
    assert st.recovered.entries == ents(101, 102, term=3)
    st.close()


def test_entries_covered_by_the_snapshot_are_skipped(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.save(None, ents(1, 10))
    st.save_snapshot(snap(8, 1))
    st.save(None, ents(5, 12))  # 5..8 are in the snapshot; 9..10 rewritten; 11..12 new
    st = reopen(st)
    assert st.recovered.entries == ents(9, 12)
    st.close()


def test_older_or_same_snapshot(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path)) as st:
        st.save(None, ents(1, 10))
        st.save_snapshot(snap(8, 1))
        st.save_snapshot(snap(8, 1))  # idempotent
        with pytest.raises(ValueError, match="older"):
            st.save_snapshot(snap(5, 1))
        with pytest.raises(ValueError, match="older"):
            st.save_snapshot(snap(8, 2))


def test_segments_rotate_and_covered_ones_are_pruned(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, segment_bytes=SMALL_SEGMENT)
    for lo in range(1, 400, 10):
        st.save(hs(1, "a", lo), ents(lo, lo + 9, size=64))
    n = len(segments(d))
    assert n > 5
    assert st.segment_count == n
    st.save_snapshot(snap(300, 1))
    left = segments(d)
    assert 1 <= len(left) < n
    st = reopen(st, segment_bytes=SMALL_SEGMENT)
    rec = st.recovered
    assert rec.snapshot == snap(300, 1)
    assert rec.entries == ents(301, 400, size=64)
    assert rec.hard_state == hs(1, "a", 391)  # survives pruning (each segment restates it)
    st.close()


def test_keep_snapshots(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, keep_snapshots=2)
    st.save(None, ents(1, 50))
    for i in (10, 20, 30, 40):
        st.save_snapshot(snap(i, 1))
    assert [os.path.basename(p)[:20] for p in snapshots(d)] == [f"{30:020d}", f"{40:020d}"]
    st.close()


def test_directory_is_locked(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    with pytest.raises(StorageLocked):
        Storage.open(str(tmp_path))
    st.close()
    Storage.open(str(tmp_path)).close()


def test_closed_storage_refuses_writes(tmp_path: Path) -> None:
    st = Storage.open(str(tmp_path))
    st.close()
    st.close()  # idempotent
    with pytest.raises(StorageClosed):
        st.save(hs(1), [])


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Storage.open(str(tmp_path), segment_bytes=10)
    with pytest.raises(ValueError):
        Storage.open(str(tmp_path), keep_snapshots=0)


def test_missing_middle_segment_is_corruption(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, segment_bytes=SMALL_SEGMENT)
    for lo in range(1, 200, 10):
        st.save(None, ents(lo, lo + 9, size=64))
    st.close()
    segs = segments(d)
    os.unlink(segs[2])
    with pytest.raises(StorageCorrupt) as exc:
        Storage.open(d, segment_bytes=SMALL_SEGMENT)
    assert exc.value.path == segs[3] and "missing segment" in exc.value.why


def test_missing_first_segment_is_corruption(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, segment_bytes=SMALL_SEGMENT)
    for lo in range(1, 200, 10):
        st.save(None, ents(lo, lo + 9, size=64))
    st.close()
    os.unlink(segments(d)[0])
    with pytest.raises(StorageCorrupt, match="not 1"):
        Storage.open(d)


def test_missing_snapshot_file_is_corruption(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d)
    st.save(None, ents(1, 10))
    st.save_snapshot(snap(5, 1))
    st.close()
    os.unlink(snapshots(d)[0])
    with pytest.raises(StorageCorrupt, match="snapshot file missing"):
        Storage.open(d)


def test_corrupt_snapshot_stops_recovery(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d)
    st.save(None, ents(1, 10))
    st.save_snapshot(snap(5, 1, data=b"x" * 1000))
    st.close()
    path = snapshots(d)[0]
    with open(path, "r+b") as f:
        f.seek(500)
        b = f.read(1)
        f.seek(500)
        f.write(bytes([b[0] ^ 0x10]))
    with pytest.raises(StorageCorrupt) as exc:
        Storage.open(d)
    assert exc.value.path == path and "checksum" in exc.value.why


def test_recovered_entries_are_contiguous_after_many_operations(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, segment_bytes=SMALL_SEGMENT)
    st.save(hs(1), ents(1, 100, term=1))
    st.save(hs(2), ents(90, 150, term=2))
    st.save_snapshot(snap(120, 2))
    st.save(hs(3), ents(140, 160, term=3))
    st = reopen(st, segment_bytes=SMALL_SEGMENT)
    assert pairs(st.recovered.entries) == pairs(ents(121, 139, term=2) + ents(140, 160, term=3))
    st.close()


def test_a_batch_larger_than_a_segment(tmp_path: Path) -> None:
    d = str(tmp_path)
    st = Storage.open(d, segment_bytes=SMALL_SEGMENT)
    st.save(hs(1), ents(1, 2))
    st.save(None, ents(3, 40, size=500))  # ~20 KiB: rotates, then fills a segment alone
    assert st.segment_count == 2
    st.save(None, ents(41, 41))  # the big segment is over the limit: rotate again
    assert st.segment_count == 3
    st = reopen(st, segment_bytes=SMALL_SEGMENT)
    assert st.recovered.entries == ents(1, 2) + ents(3, 40, size=500) + ents(41, 41)
    st.save(None, ents(42, 42))  # reopened on a segment that already has records
    assert st.segment_count == 3
    st.close()


def test_stats_count_saves_and_syncs(tmp_path: Path) -> None:
    with Storage.open(str(tmp_path)) as st:
        st.save(hs(1), ents(1, 64))
        st.save(None, [])  # nothing to write: not counted
        st.save(None, ents(65, 65))
        st.save_snapshot(snap(10, 1))
        s = st.stats()
        assert (s.saves, s.syncs, s.snapshots_saved) == (2, 3, 1)
        assert s.bytes_written > 64 * 8
        assert (s.segments, s.snapshot_index, s.last_index) == (1, 10, 65)


def test_files_are_private(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    with Storage.open(d) as st:
        st.save(None, ents(1, 2))
        st.save_snapshot(snap(1, 1))
    assert os.stat(d).st_mode & 0o777 == 0o700
    for p in [*segments(d), *snapshots(d)]:
        assert os.stat(p).st_mode & 0o777 == 0o600
