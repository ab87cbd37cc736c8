"""recovery.py — read a data directory (without changing it) and rebuild the persisted state.

``scan_data_dir(path)`` is used by ``Storage.open`` (which then repairs what it may) and by
``check-data`` (which only reports). Recovery rules:

1. Snapshots: the newest ``snap/*.snap`` (highest index) is loaded and fully verified; a bad one
   raises ``StorageCorrupt`` (older snapshots are not a silent fallback: the log before the newest
   snapshot may already be deleted). ``*.tmp`` files are leftovers of interrupted writes.
2. Segments ``wal/<seq>.wal`` must have consecutive sequence numbers (a gap is a missing segment),
   and with no snapshot the first must be seq 1. Each is checked record by record (wal.py); only
   the newest may end in a torn tail, reported in ``DirScan.torn``.
3. Replay, in order: STATE and BATCH records set the hard state; BATCH entries are appended, a
   batch starting at or below the last index replacing the suffix from there; SNAP records apply
   Raft §7 (keep the log after a matching entry, else discard it).
4. The WAL's newest snapshot mark must match the newest snapshot file. If the file is newer, a
   crash hit between writing the snapshot and logging its mark: the mark is applied at the end
   (``needs_marker``), exactly as if it had been written. If the file is older or missing, data
   was lost: ``StorageCorrupt``.
5. The entries after the snapshot must start right after it: a hole is a missing segment.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from raftkv.raft.types import Entry, HardState, Snapshot
from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.records import (
    RecordError,
    RecordType,
    decode_batch,
    decode_snap,
    decode_state,
)
from raftkv.storage.snapshot import (
    SnapshotFileInfo,
    list_snapshots,
    read_snapshot,
    verify_snapshot_file,
)
from raftkv.storage.wal import TornTail, list_segments, scan_segment

__all__ = [
    "LOCK_NAME",
    "SNAP_DIR",
    "WAL_DIR",
    "DirScan",
    "SegmentSummary",
    "scan_data_dir",
]

WAL_DIR = "wal"
SNAP_DIR = "snap"
LOCK_NAME = "LOCK"


@dataclass(slots=True)
class SegmentSummary:
    seq: int
    path: str
    size: int  # bytes of valid data (the torn tail excluded)
    records: int = 0
    entries: int = 0  # entries written in this segment (some may since be replaced)
    min_index: int = 0  # 0 when the segment holds no entries
    max_index: int = 0


@dataclass(slots=True)
class DirScan:
    data_dir: str
    fresh: bool  # no WAL and no snapshot: a new data directory
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    snapshot_path: str | None = None
    snapshots: list[SnapshotFileInfo] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)  # after the snapshot, contiguous
    segments: list[SegmentSummary] = field(default_factory=list)
    torn: TornTail | None = None
    torn_path: str | None = None
    needs_marker: bool = False
    tmp_files: list[str] = field(default_factory=list)

    @property
    def snap_index(self) -> int:
        return self.snapshot.meta.index if self.snapshot else 0

    @property
    def snap_term(self) -> int:
        return self.snapshot.meta.term if self.snapshot else 0


class _Log:
    """The replayed log: ``entries[k]`` has index ``first + k``."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.first: int | None = None  # None: nothing known yet (start of retained segments)
        self.anchored = False  # True once a snapshot mark fixed where the log starts

    @property
    def last(self) -> int:
        return (self.first or 1) + len(self.entries) - 1

    def append(self, batch: list[Entry], path: str, offset: int) -> None:
        if not batch:
            return
        e0 = batch[0].index
        for k, e in enumerate(batch):
            if e.index != e0 + k:
                raise StorageCorrupt(path, offset, f"entries not contiguous at index {e.index}")
        if self.first is None:
            self.first = e0
            self.entries = list(batch)
            return
        if e0 > self.last + 1:
            raise StorageCorrupt(
                path, offset, f"gap in log: batch starts at {e0}, log ends at {self.last}"
            )
        if e0 < self.first:
            if self.anchored:
                raise StorageCorrupt(
                    path, offset, f"batch at {e0} rewrites entries covered by a snapshot"
                )
            self.first = e0
            self.entries = list(batch)
            return
        del self.entries[e0 - self.first :]
        self.entries.extend(batch)

    def apply_snapshot(self, index: int, term: int) -> None:
        """Raft §7: keep the log after ``index`` if it holds (index, term), else discard it."""
        first = self.first
        if first is not None and first <= index <= self.last:
            if self.entries[index - first].term == term:
                del self.entries[: index - first + 1]
                self.first = index + 1
            else:
                self.entries = []
                self.first = index + 1
        elif first is None or index >= self.last:
            self.entries = []
            self.first = index + 1
        # else: every entry held is after ``index``; keep them (the final check finds holes)
        self.anchored = True


def _list_tmp(*dirs: str) -> list[str]:
    out: list[str] = []
    for d in dirs:
        if os.path.isdir(d):
            out.extend(os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".tmp"))
    return out


def scan_data_dir(data_dir: str, load_snapshot_data: bool = True) -> DirScan:
    """Read ``data_dir`` and rebuild its state. Raises StorageCorrupt; never writes.

    With ``load_snapshot_data=False`` the newest snapshot is verified block by block and
    returned with empty ``data`` (the caller streams it from ``snapshot_path``)."""
    wal_dir = os.path.join(data_dir, WAL_DIR)
    snap_dir = os.path.join(data_dir, SNAP_DIR)
    segs = list_segments(wal_dir) if os.path.isdir(wal_dir) else []
    snaps = list_snapshots(snap_dir) if os.path.isdir(snap_dir) else []
    scan = DirScan(data_dir=data_dir, fresh=not segs and not snaps, snapshots=snaps)
    scan.tmp_files = _list_tmp(wal_dir, snap_dir)
    if scan.fresh:
        return scan
    if not segs:
        raise StorageCorrupt(wal_dir, 0, "snapshots exist but the WAL has no segments")

    if snaps:
        newest = snaps[-1]
        if load_snapshot_data:
            scan.snapshot = read_snapshot(newest.path)
        else:
            scan.snapshot = Snapshot(meta=verify_snapshot_file(newest.path).meta, data=b"")
        scan.snapshot_path = newest.path
    s_idx, s_term = scan.snap_index, scan.snap_term

    if scan.snapshot is None and segs[0][0] != 1:
        raise StorageCorrupt(segs[0][1], 0, f"first segment is seq {segs[0][0]}, not 1")
    for (prev, _), (seq, path) in itertools.pairwise(segs):
        if seq != prev + 1:
            raise StorageCorrupt(path, 0, f"missing segment(s) {prev + 1}..{seq - 1}")

    log = _Log()
    hs = HardState()
    mark = (0, 0)
    for k, (seq, path) in enumerate(segs):
        seg = scan_segment(path, seq, is_last=k == len(segs) - 1)
        if seg.torn is not None:
            scan.torn, scan.torn_path = seg.torn, path
        summary = SegmentSummary(seq=seq, path=path, size=seg.valid_end, records=len(seg.records))
        scan.segments.append(summary)
        if not seg.records or seg.records[0].rtype is not RecordType.STATE:
            raise StorageCorrupt(path, seg.valid_end, "segment does not start with a STATE record")
        for n, rec in enumerate(seg.records):
            try:
                if rec.rtype is RecordType.STATE:
                    if n:
                        raise RecordError("STATE record in the middle of a segment")
                    st = decode_state(rec.payload)
                    hs = st.hard_state
                    if st.snap_index < mark[0]:
                        raise RecordError("snapshot mark moved backwards")
                    mark = (st.snap_index, st.snap_term)
                elif rec.rtype is RecordType.SNAP:
                    m = decode_snap(rec.payload)
                    if m.index < mark[0]:
                        raise RecordError("snapshot mark moved backwards")
                    mark = (m.index, m.term)
                    log.apply_snapshot(m.index, m.term)
                else:
                    batch = decode_batch(rec.payload)
                    if batch.hard_state is not None:
                        hs = batch.hard_state
                    if batch.entries:
                        summary.entries += len(batch.entries)
                        lo, hi = batch.entries[0].index, batch.entries[-1].index
                        summary.min_index = min(summary.min_index or lo, lo)
                        summary.max_index = max(summary.max_index, hi)
                    log.append(batch.entries, path, rec.offset)
            except RecordError as err:
                raise StorageCorrupt(path, rec.offset, str(err)) from err
    scan.hard_state = hs

    where = scan.snapshot_path or snap_dir
    if mark[0] > s_idx:
        raise StorageCorrupt(
            where,
            0,
            f"WAL records a snapshot at index {mark[0]} term {mark[1]} but the newest "
            f"snapshot file is at index {s_idx}: snapshot file missing",
        )
    if mark[0] == s_idx and mark[1] != s_term:
        raise StorageCorrupt(
            where, 0, f"snapshot term {s_term} differs from the WAL's mark (term {mark[1]})"
        )
    if s_idx > mark[0]:
        scan.needs_marker = True
        log.apply_snapshot(s_idx, s_term)

    if log.entries:
        first = log.first or 1
        if first > s_idx + 1:
            raise StorageCorrupt(
                scan.segments[0].path,
                0,
                f"log starts at index {first} but the snapshot ends at {s_idx}: entries "
                f"{s_idx + 1}..{first - 1} are missing (missing segment?)",
            )
        scan.entries = log.entries[s_idx + 1 - first :]
    return scan
