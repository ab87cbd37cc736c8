"""snapshots.py: a snapshot is written in the background and adopted on the driver thread, its
waiters are answered only then (at once when nothing is new); a failed write is fatal and its
waiters fail; a snapshot from the leader (streamed file or data) restores the KV machine, and the
one on disk is restored at start. Real storage and KV machine; a stand-in for the core."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.errors import ShuttingDown
from raftkv.kv import Command, KVStateMachine, Op, encode_command
from raftkv.raft import Membership
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.api import NodeStatus
from raftkv.server.metrics import NodeMetrics
from raftkv.server.snapshot_policy import SnapshotSchedule
from raftkv.server.snapshot_stream import staged_path
from raftkv.server.snapshots import Snapshots
from raftkv.server.waiters import Waiter
from raftkv.server.work import SnapshotWritten
from raftkv.storage import Storage
from raftkv.storage.errors import StorageFailed
from raftkv.storage.snapshot import snapshot_name, write_snapshot_stream


class _Core:
    def __init__(self) -> None:
        self.compacted: list[int] = []

    def membership_at(self, index: int) -> Membership:
        return Membership(voters=("n1",))

    def compact(self, index: int, data: bytes) -> None:
        self.compacted.append(index)


class _Node:
    """What the driver hands ``Snapshots``: the KV machine, the schedule, metrics, notes."""

    def __init__(self) -> None:
        self.sm = KVStateMachine()
        self.schedule = SnapshotSchedule()
        self.metrics = NodeMetrics("n1", lambda: NodeStatus(id="n1", members=("n1",)))
        self.written: queue.Queue[SnapshotWritten] = queue.Queue()
        self.notes: list[str] = []
        self.snapshots = Snapshots(
            self.sm,
            self.schedule,
            self.metrics,
            on_written=self.written.put,
            note=self.notes.append,
        )

    def apply(self, first: int, last: int, term: int = 1) -> None:
        with self.sm.lock:
            for i in range(first, last + 1):
                self.sm.apply(i, term, encode_command(Command(op=Op.PUT, key=f"k{i}", value="v")))

    def writing(self) -> bool:
        return self.snapshots.writing

    def metric(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    s = Storage.open(str(tmp_path / "d"), snapshot_data=False)
    try:
        yield s
    finally:
        s.close()


def test_a_snapshot_is_written_in_the_background_and_its_waiters_answered_once_adopted(
    storage: Storage,
) -> None:
    n, core = _Node(), _Core()
    n.apply(1, 3)
    first: Waiter[int] = Waiter()
    second: Waiter[int] = Waiter()
    n.snapshots.take_now(core, storage, first)  # type: ignore[arg-type]
    assert n.writing()
    n.snapshots.take_now(core, storage, second)  # type: ignore[arg-type]  # joins the same one
    written = n.written.get(timeout=10)
    assert written.error is None and written.meta.index == 3 and written.size > 0
    assert not first.done and not second.done  # answered on the driver thread, once adopted
    assert storage.snapshot_path() is None

    n.snapshots.finish(core, storage, written)  # type: ignore[arg-type]
    assert first.value == 3 and second.value == 3
    assert not n.writing() and n.written.empty()  # one file for both waiters
    assert core.compacted == [3]
    path = storage.snapshot_path()
    assert path is not None and os.path.basename(path) == snapshot_name(3, 1)
    assert n.schedule.index == 3 and n.schedule.last_bytes == written.size
    assert n.metric("raftkv_snapshots_total") == 1
    assert n.metric("raftkv_snapshot_bytes") == written.size
    assert any(s.startswith("snapshot-copy=") for s in n.notes)
    assert any(s.startswith("snapshot-adopt=") for s in n.notes)

    # nothing applied since: answered at once with the snapshot in place, nothing written
    again: Waiter[int] = Waiter()
    n.snapshots.take_now(core, storage, again)  # type: ignore[arg-type]
    assert again.value == 3 and not n.writing() and n.written.empty()


def test_the_policy_decides_when_one_is_taken(storage: Storage) -> None:
    n, core = _Node(), _Core()
    n.apply(1, 5)
    n.snapshots.take_if_due(core, storage, snapshot_every=10)  # type: ignore[arg-type]
    assert not n.writing()
    n.snapshots.take_if_due(core, storage, snapshot_every=5)  # type: ignore[arg-type]
    assert n.writing()
    written = n.written.get(timeout=10)
    n.snapshots.take_if_due(core, storage, snapshot_every=1)  # type: ignore[arg-type]
    assert n.written.empty()  # one at a time
    n.snapshots.finish(core, storage, written)  # type: ignore[arg-type]
    assert core.compacted == [5] and n.schedule.applied_at == 5


def test_a_failed_write_is_fatal_and_its_waiters_fail_when_the_node_stops(tmp_path: Path) -> None:
    class _GoneDir:
        snap_dir = str(tmp_path / "gone")  # the writer cannot create its file

    n, core = _Node(), _Core()
    n.apply(1, 2)
    w: Waiter[int] = Waiter()
    n.snapshots.take_now(core, _GoneDir(), w)  # type: ignore[arg-type]
    written = n.written.get(timeout=10)
    assert written.path is None and isinstance(written.error, OSError)
    with pytest.raises(StorageFailed, match="writing snapshot 2 failed"):
        n.snapshots.finish(core, _GoneDir(), written)  # type: ignore[arg-type]
    assert not w.done and core.compacted == [] and n.metric("raftkv_snapshots_total") == 0
    n.snapshots.fail_waiters(ShuttingDown("stopped"))
    assert isinstance(w.error, ShuttingDown)


def _leader_state(index: int) -> tuple[KVStateMachine, SnapshotMeta]:
    leader = _Node()
    leader.apply(1, index, term=2)
    return leader.sm, SnapshotMeta(index=index, term=2, members=("n1",))


def test_a_streamed_snapshot_from_the_leader_is_adopted_and_restored(storage: Storage) -> None:
    leader, meta = _leader_state(4)
    tmp, size = write_snapshot_stream(storage.snap_dir, meta, leader.snapshot_view().write)
    os.rename(tmp, staged_path(storage.snap_dir, meta))  # where SnapshotReceiver leaves it
    n = _Node()
    n.snapshots.install(storage, Snapshot(meta=meta, data=b""))
    assert n.sm.get("k4") == ("v", 4) and len(n.sm) == 4
    assert (n.sm.applied_index, n.sm.applied_term) == (4, 2)
    assert n.schedule.index == 4 and n.schedule.last_bytes == size
    assert not os.path.exists(staged_path(storage.snap_dir, meta))
    path = storage.snapshot_path()
    assert path is not None and os.path.basename(path) == snapshot_name(4, 2)
    assert any(s.startswith("snapshot-install=") for s in n.notes)


def test_a_streamed_snapshot_whose_file_is_gone_is_fatal_not_an_empty_state(
    storage: Storage,
) -> None:
    n = _Node()
    n.apply(1, 2)
    with pytest.raises(StorageFailed, match="has no file"):
        n.snapshots.install(storage, Snapshot(meta=SnapshotMeta(index=9, term=2), data=b""))
    assert n.sm.applied_index == 2 and len(n.sm) == 2 and storage.snapshot_path() is None


def test_a_snapshot_with_data_is_saved_and_restored_then_recovered_at_start(
    tmp_path: Path,
) -> None:
    leader, meta = _leader_state(3)
    data = leader.snapshot()
    with Storage.open(str(tmp_path / "d"), snapshot_data=False) as storage:
        n = _Node()
        n.snapshots.install(storage, Snapshot(meta=meta, data=data))
        assert n.sm.get("k3") == ("v", 3) and n.sm.applied_index == 3
        assert n.schedule.index == 3 and n.schedule.last_bytes == len(data)

    with Storage.open(str(tmp_path / "d"), snapshot_data=False) as storage:
        snap = storage.recovered.snapshot
        assert snap is not None and snap.meta.index == 3
        restarted = _Node()
        restarted.snapshots.recovered(storage, snap)
    assert restarted.sm.get("k1") == ("v", 1) and len(restarted.sm) == 3
    assert (restarted.sm.applied_index, restarted.sm.applied_term) == (3, 2)
    assert restarted.schedule.index == restarted.schedule.applied_at == 3
    assert restarted.schedule.last_bytes == len(data)
