"""snapshots.py — ``Snapshots``: the node's own snapshots, taken, installed and waited for.

- Taking one (``take_if_due``, ``take_now``): copy the KV machine under its lock (the only pause
  of the driver), write the copy in the background (the ``raftkv-snapshot`` thread, streaming:
  ``write_snapshot_stream``), and hand the result back to the driver as a ``SnapshotWritten``
  work item (``on_written``); ``finish`` then adopts the file (``storage.adopt_snapshot_file``)
  and compacts the core's log, on the driver thread. One snapshot is written at a time.
- Waiting for one (``POST /v1/admin/snapshot``, ``take_now``): the waiter is answered with the
  snapshot index once the snapshot being written (or the one started for it) is in place, or at
  once with the last one when nothing was applied since.
- Installing one: the snapshot the core hands over in a Ready (``install``: a file streamed in by
  ``SnapshotReceiver``, adopted, the KV machine restored from it block by block), and the one
  recovered from disk at start (``recovered``).

A failed write or install raises ``StorageFailed``: fatal for the driver (docs/node.md). The
policy (when a snapshot is due) is ``snapshot_policy.SnapshotSchedule``'s, whose counters this
class updates as snapshots are restored, taken and installed. Driver thread only, except
``join`` (``NodeDriver.stop``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from raftkv.errors import RaftkvError
from raftkv.kv import KVStateMachine
from raftkv.raft import RaftNode
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.metrics import NodeMetrics
from raftkv.server.snapshot_policy import SnapshotSchedule
from raftkv.server.snapshot_stream import staged_path
from raftkv.server.waiters import Waiter
from raftkv.server.work import SnapshotWritten
from raftkv.storage import Storage
from raftkv.storage.errors import StorageFailed
from raftkv.storage.snapshot import open_snapshot_data, write_snapshot_stream

__all__ = ["Snapshots"]

log = logging.getLogger(__name__)


class Snapshots:
    def __init__(
        self,
        sm: KVStateMachine,
        schedule: SnapshotSchedule,
        metrics: NodeMetrics,
        *,
        on_written: Callable[[SnapshotWritten], None],
        note: Callable[[str], None],
    ) -> None:
        """``on_written``: called on the ``raftkv-snapshot`` thread when the file is written
        (the driver queues it and passes it to ``finish``). ``note``: what took time in this
        driver pass (its slow-pass log line)."""
        self._sm = sm
        self._schedule = schedule
        self._metrics = metrics
        self._on_written = on_written
        self._note = note
        self._thread: threading.Thread | None = None  # a snapshot being written
        self._waiters: list[Waiter[int]] = []  # snapshot_now callers

    @property
    def writing(self) -> bool:
        """A snapshot is being written (its ``SnapshotWritten`` has not been finished yet)."""
        return self._thread is not None

    # ------------------------------------------------------------------ installing
    def recovered(self, storage: Storage, snap: Snapshot) -> None:
        """At start: restore the KV machine from the snapshot recovered from disk."""
        path = storage.snapshot_path()
        assert path is not None
        self._restore_file(path)
        self._sm.reset_applied(snap.meta.index, snap.meta.term)
        self._schedule.restored(snap.meta.index)

    def install(self, storage: Storage, snap: Snapshot) -> None:
        """The core accepted a snapshot from the leader (a Ready's ``snapshot``): store it and
        restore the KV machine from it. Streamed snapshots carry meta only; their file waits
        where ``SnapshotReceiver`` staged it."""
        sm = self._sm
        t0 = time.perf_counter()
        staged = staged_path(storage.snap_dir, snap.meta)
        if not snap.data and os.path.exists(staged):  # streamed in (snapshot_stream.py)
            storage.adopt_snapshot_file(staged, snap.meta)
            path = storage.snapshot_path()
            assert path is not None
            self._restore_file(path)
        elif not snap.data:
            # the core accepted a streamed snapshot whose file is gone: never install an
            # empty state in its place; the node restarts from its disk (fatal)
            raise StorageFailed(f"streamed snapshot {snap.meta.index} has no file {staged}")
        else:
            storage.save_snapshot(snap)
            sm.restore(snap.data)
            self._schedule.last_bytes = len(snap.data)
        sm.reset_applied(snap.meta.index, snap.meta.term)
        self._schedule.restored(snap.meta.index)
        took = time.perf_counter() - t0
        self._note(f"snapshot-install={took:.3f}s")
        log.info(
            "event=snapshot-installed index=%d term=%d keys=%d seconds=%.3f",
            snap.meta.index,
            snap.meta.term,
            len(sm),
            took,
        )

    def _restore_file(self, path: str) -> None:
        """Restore the KV machine from a snapshot file, block by block."""
        layout, f = open_snapshot_data(path)
        with f:
            self._sm.restore_stream(f, layout.data_len)
        self._schedule.last_bytes = layout.data_len

    # ------------------------------------------------------------------ taking
    def take_if_due(self, node: RaftNode, storage: Storage, snapshot_every: int) -> None:
        """End of a driver pass: start a snapshot if none is being written and the policy
        (snapshot_policy.py) says so."""
        if self._thread is None and self._schedule.due(self._sm.applied_index, snapshot_every):
            self._start(node, storage)

    def take_now(self, node: RaftNode, storage: Storage, waiter: Waiter[int]) -> None:
        """``POST /v1/admin/snapshot``: answer ``waiter`` with the index of the snapshot in
        place once the one being written (or started now) is."""
        self._waiters.append(waiter)
        if self._thread is None:
            self._start(node, storage)

    def _start(self, node: RaftNode, storage: Storage) -> None:
        """Copy the state under the lock (the only pause of the driver) and write it in the
        background; ``finish`` runs on the driver thread when the file is written."""
        sm = self._sm
        schedule = self._schedule
        t0 = time.perf_counter()
        with sm.lock:
            index, term = sm.applied_index, sm.applied_term
            if index <= schedule.index:
                schedule.nothing_new(index)
                self._resolve_waiters(schedule.index)
                return
            view = sm.snapshot_view()
        schedule.copied()
        conf = node.membership_at(index)
        meta = SnapshotMeta(index=index, term=term, members=conf.voters, membership=conf)
        copy_s = time.perf_counter() - t0
        self._note(f"snapshot-copy={copy_s:.3f}s")
        snap_dir = storage.snap_dir
        on_written = self._on_written

        def write() -> None:
            try:
                path, size = write_snapshot_stream(snap_dir, meta, view.write)
            except BaseException as err:  # reported to the driver: a storage failure is fatal
                on_written(SnapshotWritten(meta, None, 0, t0, copy_s, err))
            else:
                on_written(SnapshotWritten(meta, path, size, t0, copy_s))

        self._thread = threading.Thread(target=write, name="raftkv-snapshot", daemon=True)
        self._thread.start()

    def finish(self, node: RaftNode, storage: Storage, written: SnapshotWritten) -> None:
        """The ``raftkv-snapshot`` thread is done: adopt its file, compact the core's log and
        answer the waiters. A failed write raises ``StorageFailed``."""
        meta, path, size, err = written.meta, written.path, written.size, written.error
        t0, copy_s = written.started, written.copy_seconds
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if err is not None or path is None:
            raise StorageFailed(f"writing snapshot {meta.index} failed: {err}") from err
        t_adopt = time.perf_counter()
        adopted = storage.adopt_snapshot_file(path, meta)
        self._note(f"snapshot-adopt={time.perf_counter() - t_adopt:.3f}s")
        if adopted:
            node.compact(meta.index, b"")
            self._metrics.snapshots.inc()
            self._metrics.snapshot_bytes.set(size)
            self._metrics.snapshot_seconds.observe(time.perf_counter() - t0)
            log.info(
                "event=snapshot index=%d term=%d bytes=%d seconds=%.3f copy_seconds=%.3f",
                meta.index,
                meta.term,
                size,
                time.perf_counter() - t0,
                copy_s,
            )
        self._schedule.written(meta.index, size if adopted else None)
        self._resolve_waiters(self._schedule.index)

    def _resolve_waiters(self, index: int) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.resolve(index)

    # ------------------------------------------------------------------ stopping
    def join(self, timeout: float) -> None:
        """``NodeDriver.stop`` (another thread): let a snapshot being written finish its file."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def fail_waiters(self, failure: RaftkvError) -> None:
        """The node stopped or failed: nobody will answer the snapshot waiters."""
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.fail(failure)
