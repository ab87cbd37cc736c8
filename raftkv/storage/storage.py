"""storage.py — ``Storage``: the durable home of a node's Raft state (docs/contracts.md §2).

Layout of a data directory (details in docs/storage.md)::

    DATA_DIR/LOCK                     flock()ed while a Storage has the directory open
    DATA_DIR/wal/<seq:016d>.wal       write-ahead log segments (wal.py, records.py)
    DATA_DIR/snap/<index>-<term>.snap snapshots (snapshot.py)

Guarantees:
- ``save(hard_state, entries)`` appends ONE record (hard state + entries) with one ``writev``
  and one ``fsync``; when it returns, both are durable (group commit: the driver batches many
  proposals into one call). If ``entries[0].index`` <= the last stored index, the stored suffix
  from that index is replaced — in the same record, so a crash leaves the old log or the new one.
- ``save_snapshot(snapshot)`` writes the snapshot file atomically (tmp, fsync, rename, fsync
  dir), then logs a SNAP mark (fsync), then deletes snapshots beyond ``keep_snapshots`` and the
  log segments wholly covered by the snapshot. Raft §7: if the log holds the snapshot's last
  entry with the same term, the entries after it are kept; otherwise the log is discarded.
- ``Storage.open`` recovers (recovery.py): a torn final record is cut off with a WARNING;
  every other inconsistency raises ``StorageCorrupt`` naming the file and offset.
- Any I/O error while writing makes the Storage unusable (``StorageFailed``): the caller must
  stop and reopen, because the disk and the in-memory view may differ.

One Storage per directory (``StorageLocked`` otherwise, after waiting up to ``lock_timeout``:
lock.py). Methods are thread-safe.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from raftkv.raft.types import Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import lock
from raftkv.storage.errors import StorageClosed, StorageError, StorageFailed
from raftkv.storage.fsutil import DIR_MODE, FILE_MODE, sync_dir, sync_file
from raftkv.storage.records import (
    RecordType,
    encode_batch,
    encode_frame,
    encode_snap,
    encode_state,
)
from raftkv.storage.recovery import LOCK_NAME, SNAP_DIR, WAL_DIR, DirScan, scan_data_dir
from raftkv.storage.snapshot import (
    list_snapshots,
    snapshot_name,
    write_snapshot,
)
from raftkv.storage.wal import SegmentWriter, create_segment

__all__ = ["RecoveredState", "Storage", "StorageStats"]

log = logging.getLogger(__name__)

MIN_SEGMENT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """What ``Storage.open`` found: feed it to ``RaftNode(restored=RestoredState(...))``."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: list[Entry]  # the log after the snapshot, contiguous


@dataclass(frozen=True, slots=True)
class StorageStats:
    """Counters for metrics: cumulative since open, plus the current layout."""

    saves: int  # save() calls that wrote a record
    syncs: int  # fsyncs of WAL records (one per save / snapshot mark)
    bytes_written: int  # WAL bytes appended
    snapshots_saved: int
    segments: int
    snapshot_index: int
    last_index: int


@dataclass(slots=True)
class _Segment:
    seq: int
    path: str
    max_index: int  # highest entry index ever written to it (0: none)


def _frame(rtype: RecordType, payload: list[bytes]) -> list[bytes]:
    body = b"".join(payload)
    return [encode_frame(rtype, body), body]


def _mkdir_durable(path: str) -> None:
    if not os.path.isdir(path):
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        sync_dir(parent)


class Storage:
    """Write-ahead log + hard state + snapshots of one Raft node. Use ``Storage.open``."""

    def __init__(
        self,
        data_dir: str,
        lock_fd: int,
        scan: DirScan,
        segment_bytes: int,
        keep_snapshots: int,
    ) -> None:
        self.data_dir = data_dir
        self._wal_dir = os.path.join(data_dir, WAL_DIR)
        self._snap_dir = os.path.join(data_dir, SNAP_DIR)
        self._lock_fd = lock_fd
        self._segment_bytes = segment_bytes
        self._keep_snapshots = keep_snapshots
        self._mu = threading.Lock()
        self._closed = False
        self._failed: BaseException | None = None
        self._recovered = RecoveredState(scan.hard_state, scan.snapshot, scan.entries)
        self._hs = scan.hard_state
        self._snap_index = scan.snap_index
        self._snap_term = scan.snap_term
        self._snap_members: tuple[str, ...] = scan.snapshot.meta.members if scan.snapshot else ()
        self._snap_membership = scan.snapshot.meta.membership if scan.snapshot else None
        # Terms of the entries after the snapshot, run-length coded: _run_start[k] is the first
        # index with term _run_term[k]. Cheap to keep; answers term_at() for Raft §7 decisions.
        self._run_start: list[int] = []
        self._run_term: list[int] = []
        self._last_index = scan.snap_index
        self._note_entries(scan.entries)
        self._segments = [_Segment(s.seq, s.path, s.max_index) for s in scan.segments]
        self._writer: SegmentWriter | None = None
        self._saves = 0
        self._syncs = 0
        self._bytes_written = 0
        self._snapshots_saved = 0
        # False while the active segment holds only its STATE record: a record that does not
        # fit is then written anyway (segments hold at least one record beyond STATE).
        self._active_has_records = bool(scan.segments) and scan.segments[-1].records > 1

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(
        cls,
        data_dir: str,
        segment_bytes: int = 64 << 20,
        keep_snapshots: int = 3,
        lock_timeout: float = 0.0,
        *,
        snapshot_data: bool = True,
    ) -> Storage:
        """Open (creating if needed) and recover ``data_dir``. Raises StorageCorrupt/Locked.

        ``lock_timeout``: seconds to wait for another process to release the directory's lock
        (logged), 0 = fail at once. ``snapshot_data=False``: ``recovered.snapshot`` has empty
        data (the file is verified block by block, not loaded); read it from ``snapshot_path()``.
        """
        if segment_bytes < MIN_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be >= {MIN_SEGMENT_BYTES}")
        if keep_snapshots < 1:
            raise ValueError("keep_snapshots must be >= 1")
        data_dir = os.path.abspath(data_dir)
        try:
            _mkdir_durable(data_dir)
            lock_fd = os.open(os.path.join(data_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as err:
            raise StorageError(f"cannot open data directory {data_dir}: {err}") from err
        try:
            lock.acquire(lock_fd, data_dir, lock_timeout)
        except BaseException:
            os.close(lock_fd)
            raise
        st: Storage | None = None
        try:
            _mkdir_durable(os.path.join(data_dir, WAL_DIR))
            _mkdir_durable(os.path.join(data_dir, SNAP_DIR))
            scan = scan_data_dir(data_dir, load_snapshot_data=snapshot_data)
            st = cls(data_dir, lock_fd, scan, segment_bytes, keep_snapshots)
            st._repair(scan)
        except BaseException as err:
            if st is not None and st._writer is not None:
                st._writer.close()
            os.close(lock_fd)
            if isinstance(err, OSError):
                raise StorageError(f"cannot open data directory {data_dir}: {err}") from err
            raise
        log.info(
            "storage opened dir=%s snapshot_index=%d first_index=%d last_index=%d term=%d "
            "segments=%d",
            data_dir,
            st._snap_index,
            st._snap_index + 1,
            st._last_index,
            st._hs.term,
            len(st._segments),
        )
        return st

    def _repair(self, scan: DirScan) -> None:
        for tmp in scan.tmp_files:
            log.info("storage removing leftover file=%s", tmp)
            os.unlink(tmp)
        if scan.tmp_files:
            sync_dir(self._wal_dir)
            sync_dir(self._snap_dir)
        if scan.fresh:
            self._writer = create_segment(self._wal_dir, 1, self._state_record())
            self._segments = [_Segment(1, self._writer.path, 0)]
            return
        active = scan.segments[-1]
        self._writer = SegmentWriter.open_existing(active.path, active.seq, active.size)
        if scan.torn is not None:
            log.warning(
                "storage torn tail truncated file=%s offset=%d dropped_bytes=%d why=%r",
                scan.torn_path,
                scan.torn.offset,
                scan.torn.size - scan.torn.offset,
                scan.torn.why,
            )
            self._writer.truncate(scan.torn.offset)
        if scan.needs_marker:
            log.info(
                "storage completing interrupted snapshot index=%d term=%d",
                self._snap_index,
                self._snap_term,
            )
            self._append(RecordType.SNAP, [encode_snap(self._snap_index, self._snap_term)])
        self._prune()

    def close(self) -> None:
        """Release the directory. Everything ``save`` returned from is already durable."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            if self._writer is not None:
                self._writer.close()
            os.close(self._lock_fd)

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ views

    @property
    def recovered(self) -> RecoveredState:
        """The state found at open (not updated by later saves)."""
        return self._recovered

    @property
    def hard_state(self) -> HardState:
        return self._hs

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        if not self._snap_index:
            return None
        return SnapshotMeta(
            index=self._snap_index,
            term=self._snap_term,
            members=self._snap_members,
            membership=self._snap_membership,
        )

    @property
    def first_index(self) -> int:
        """Index of the first entry after the snapshot (may be > last_index: empty log)."""
        return self._snap_index + 1

    @property
    def last_index(self) -> int:
        """Index of the last stored entry (the snapshot's index when the log is empty)."""
        return self._last_index

    def term_at(self, index: int) -> int | None:
        """Term of the stored entry at ``index`` (the snapshot's term at its index), else None."""
        if index == self._snap_index:
            return self._snap_term
        if index < self._snap_index or index > self._last_index:
            return None
        return self._run_term[bisect.bisect_right(self._run_start, index) - 1]

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def stats(self) -> StorageStats:
        """Counters for /metrics (cheap: no I/O)."""
        return StorageStats(
            saves=self._saves,
            syncs=self._syncs,
            bytes_written=self._bytes_written,
            snapshots_saved=self._snapshots_saved,
            segments=len(self._segments),
            snapshot_index=self._snap_index,
            last_index=self._last_index,
        )

    # ------------------------------------------------------------------ writes

    def _check_usable(self) -> SegmentWriter:
        if self._failed is not None:
            raise StorageFailed(f"storage failed earlier: {self._failed}") from self._failed
        if self._closed or self._writer is None:
            raise StorageClosed("storage is closed")
        return self._writer

    def _state_record(self) -> list[bytes]:
        return _frame(RecordType.STATE, [encode_state(self._hs, self._snap_index, self._snap_term)])

    def _append(self, rtype: RecordType, payload: list[bytes]) -> None:
        """Append one record to the active segment (rotating first if full): 1 write, 1 fsync."""
        writer = self._check_usable()
        parts = _frame(rtype, payload)
        size = len(parts[0]) + len(parts[1])
        try:
            if writer.size + size > self._segment_bytes and self._active_has_records:
                writer = self._rotate(writer)
            writer.append(parts)
            self._active_has_records = True
            self._syncs += 1
            self._bytes_written += size
        except OSError as err:
            self._failed = err
            log.error("storage write failed file=%s error=%r", writer.path, err)
            raise StorageFailed(f"write to {writer.path} failed: {err}") from err

    def _rotate(self, old: SegmentWriter) -> SegmentWriter:
        seq = old.seq + 1
        new = create_segment(self._wal_dir, seq, self._state_record())
        old.close()
        self._writer = new
        self._active_has_records = False
        self._segments.append(_Segment(seq, new.path, 0))
        log.info("storage segment rotated file=%s", new.path)
        return new

    def _note_entries(self, entries: Sequence[Entry]) -> None:
        """Update the in-memory term index for ``entries`` (already validated/stored)."""
        if not entries:
            return
        e0 = entries[0].index
        cut = bisect.bisect_left(self._run_start, e0)
        del self._run_start[cut:]
        del self._run_term[cut:]
        prev = self._run_term[-1] if self._run_term else None
        for e in entries:
            if e.term != prev:
                self._run_start.append(e.index)
                self._run_term.append(e.term)
                prev = e.term
        self._last_index = entries[-1].index

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Durably store ``hard_state`` (if not None) and ``entries`` with ONE write + fsync.

        Entries at or below the snapshot index are already covered and skipped. If the first
        remaining entry's index is <= ``last_index``, the stored suffix from it is replaced.
        Raises ValueError for a malformed batch (gap, non-contiguous indexes, falling terms).
        """
        with self._mu:
            self._check_usable()
            ents = entries
            if ents and ents[0].index <= self._snap_index:
                ents = ents[self._snap_index + 1 - ents[0].index :]
            if not ents and hard_state is None:
                return
            if ents:
                self._validate(ents)
            self._append(RecordType.BATCH, encode_batch(hard_state, ents))
            self._saves += 1
            if hard_state is not None:
                self._hs = hard_state
            if ents:
                self._note_entries(ents)
                seg = self._segments[-1]
                seg.max_index = max(seg.max_index, ents[-1].index)

    def _validate(self, ents: Sequence[Entry]) -> None:
        e0 = ents[0].index
        if e0 > self._last_index + 1:
            raise ValueError(f"gap: entries start at {e0} but the log ends at {self._last_index}")
        prev_term = self.term_at(e0 - 1) or 0
        expect = e0
        for e in ents:
            if e.index != expect:
                raise ValueError(f"entries not contiguous: {e.index} where {expect} expected")
            if e.term < prev_term or e.term < 1:
                raise ValueError(f"entry {e.index} has term {e.term} below {max(prev_term, 1)}")
            prev_term = e.term
            expect += 1

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` atomically and durably, then prune old snapshots and segments.

        Saving the snapshot already stored (same index and term) is a no-op. An older one
        raises ValueError.
        """
        meta = snapshot.meta
        with self._mu:
            self._check_usable()
            if meta.index < 1 or meta.term < 1:
                raise ValueError("snapshot index and term must be >= 1")
            if meta.index < self._snap_index or (
                meta.index == self._snap_index and meta.term != self._snap_term
            ):
                raise ValueError(
                    f"snapshot {meta.index}/{meta.term} is older than the stored "
                    f"{self._snap_index}/{self._snap_term}"
                )
            if meta.index == self._snap_index:
                return
            try:
                write_snapshot(self._snap_dir, snapshot)
            except OSError as err:
                self._failed = err
                raise StorageFailed(f"writing snapshot {meta.index} failed: {err}") from err
            self._snapshot_in_place(meta)

    def adopt_snapshot_file(self, tmp_path: str, meta: SnapshotMeta) -> bool:
        """Move a complete, fsynced snapshot file (written by ``write_snapshot_stream`` or
        received by a ``FileAssembler``, in this snapshot directory) into place, like
        ``save_snapshot``. A snapshot not newer than the stored one is discarded (False)."""
        with self._mu:
            self._check_usable()
            if meta.index < 1 or meta.term < 1:
                raise ValueError("snapshot index and term must be >= 1")
            if meta.index <= self._snap_index:
                os.unlink(tmp_path)
                return False
            path = os.path.join(self._snap_dir, snapshot_name(meta.index, meta.term))
            try:
                os.rename(tmp_path, path)
                sync_dir(self._snap_dir)
            except OSError as err:
                self._failed = err
                raise StorageFailed(f"installing snapshot {meta.index} failed: {err}") from err
            self._snapshot_in_place(meta)
            return True

    def snapshot_path(self) -> str | None:
        """The stored snapshot's file, or None."""
        with self._mu:
            if self._snap_index == 0:
                return None
            return os.path.join(self._snap_dir, snapshot_name(self._snap_index, self._snap_term))

    @property
    def snap_dir(self) -> str:
        return self._snap_dir

    def _snapshot_in_place(self, meta: SnapshotMeta) -> None:
        """The snapshot file of ``meta`` is durable in place: mark it in the log, drop what it
        covers (caller holds ``_mu``)."""
        self._append(RecordType.SNAP, [encode_snap(meta.index, meta.term)])
        self._snapshots_saved += 1
        keep = self.term_at(meta.index) == meta.term
        self._snap_index, self._snap_term = meta.index, meta.term
        self._snap_members = meta.members
        self._snap_membership = meta.membership
        if keep and self._last_index > meta.index:
            # drop the runs before index + 1; the run holding index + 1 now starts there
            k = bisect.bisect_right(self._run_start, meta.index + 1) - 1
            self._run_start = [meta.index + 1, *self._run_start[k + 1 :]]
            self._run_term = self._run_term[k:]
        else:
            self._run_start.clear()
            self._run_term.clear()
            self._last_index = meta.index
        log.info(
            "storage snapshot saved index=%d term=%d log_kept=%s last_index=%d",
            meta.index,
            meta.term,
            keep,
            self._last_index,
        )
        self._prune()

    def _prune(self) -> None:
        """Delete snapshots beyond keep_snapshots and segments wholly covered by the snapshot."""
        try:
            snaps = list_snapshots(self._snap_dir)
            for old in snaps[: max(0, len(snaps) - self._keep_snapshots)]:
                os.unlink(old.path)
                log.info("storage snapshot pruned file=%s", old.path)
            if len(snaps) > self._keep_snapshots:
                sync_dir(self._snap_dir)
            # Oldest first, never the active segment, one directory fsync per deletion so a
            # crash can only leave a (consecutive) suffix of segments behind.
            while len(self._segments) > 1 and self._segments[0].max_index <= self._snap_index:
                seg = self._segments.pop(0)
                os.unlink(seg.path)
                sync_dir(self._wal_dir)
                log.info("storage segment pruned file=%s max_index=%d", seg.path, seg.max_index)
        except OSError as err:
            self._failed = err
            raise StorageFailed(f"pruning failed: {err}") from err

    # ------------------------------------------------------------------ snapshot streaming

    def sync(self) -> None:
        """fsync the active segment (never needed after save; for callers that want a barrier)."""
        with self._mu:
            sync_file(self._check_usable().fd)
