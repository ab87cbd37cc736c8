"""Snapshots (Raft §7): compact(), InstallSnapshot to a far-behind follower, restart from one."""

from __future__ import annotations

import random

import pytest

from raftkv.raft import (
    AppendEntries,
    ConfigError,
    Entry,
    HardState,
    InstallSnapshot,
    RaftNode,
    RestoredState,
    Snapshot,
    SnapshotMeta,
)
from tests.unit.raft.raftnet import Network, make_config


def _fill(net: Network, leader: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        net.node(leader).propose(f"v{i}".encode())
        net.stabilize()


def test_compact_drops_the_log_prefix() -> None:
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 5)
    n1 = net.node("n1")
    assert n1.applied_index == 6
    n1.compact(4, b"state@4")
    st = n1.status()
    assert st.snapshot_index == 4 and st.last_log_index == 6
    assert [e.index for e in n1.log_entries()] == [5, 6]
    assert n1.snapshot is not None and n1.snapshot.meta.term == 1
    n1.compact(3, b"older")  # already compacted: ignored
    assert n1.status().snapshot_index == 4
    with pytest.raises(ConfigError):
        n1.compact(7, b"beyond applied")


def test_far_behind_follower_catches_up_through_a_snapshot() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n3")
    _fill(net, "n1", 10)
    n1 = net.node("n1")
    n1.compact(n1.applied_index, b"kv-state")
    snap_index = n1.applied_index
    net.recover()
    net.tick_all(3)
    p3 = net.peers["n3"]
    assert [s.meta.index for s in p3.restored_snapshots] == [snap_index]
    assert p3.restored_snapshots[0].data == b"kv-state"
    assert any(isinstance(m, InstallSnapshot) for m in net.delivered)
    # it continues normally after the snapshot
    _fill(net, "n1", 3, start=100)
    net.tick_all(2)
    assert [e.data for e in p3.applied] == [b"v100", b"v101", b"v102"]
    st = net.node("n3").status()
    assert st.snapshot_index == snap_index and st.applied_index == snap_index + 3
    assert p3.disk.snapshot is not None and p3.disk.entries[0].index == snap_index + 1


def test_lost_snapshot_is_resent_after_an_election_timeout() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n3")
    _fill(net, "n1", 4)
    net.node("n1").compact(5, b"s")
    net.recover()
    net.drop_types(InstallSnapshot)
    net.tick_all(3)
    assert net.peers["n3"].restored_snapshots == []
    net.recover()
    net.tick_all(15)
    assert [s.meta.index for s in net.peers["n3"].restored_snapshots] == [5]


def test_restart_from_a_snapshot_and_serve_it_to_a_lagging_follower() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n3")
    _fill(net, "n1", 6)
    n1 = net.node("n1")
    n1.compact(5, b"state@5")
    net.peers["n1"].disk.compact(n1.snapshot)  # type: ignore[arg-type]
    net.restart("n1")
    assert net.node("n1").status().snapshot_index == 5
    assert net.node("n1").snapshot == n1.snapshot  # the restored Snapshot keeps its data
    for _ in range(60):
        net.tick_all()
        if net.leader():
            break
    if net.leader() != "n1":
        net.node(net.leader() or "").transfer_leadership("n1")
        net.stabilize()
    assert net.leader() == "n1"
    net.recover()
    net.tick_all(3)
    assert [s.data for s in net.peers["n3"].restored_snapshots] == [b"state@5"]


def test_restored_state_must_be_contiguous() -> None:
    cfg = make_config("a", ["a", "b", "c"])
    ok = RestoredState(hard_state=HardState(term=1), snapshot=SnapshotMeta(index=5, term=1))
    assert RaftNode(cfg, random.Random(1), ok).status().commit_index == 5

    with pytest.raises(ConfigError):
        RaftNode(
            cfg,
            random.Random(1),
            RestoredState(
                hard_state=HardState(term=1),
                snapshot=SnapshotMeta(index=5, term=1),
                entries=[Entry(index=7, term=1)],
            ),
        )
    with pytest.raises(ConfigError):
        RaftNode(
            cfg, random.Random(1), RestoredState(entries=[Entry(index=1, term=3)])
        )  # term 0 < last log term 3


def test_stale_snapshot_is_acknowledged_not_installed() -> None:
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 3)
    n2 = net.node("n2")
    net.tick_all(2)
    term = n2.term
    old = Snapshot(meta=SnapshotMeta(index=2, term=term, members=("n1", "n2", "n3")), data=b"x")
    n2.step(InstallSnapshot(src="n1", dst="n2", term=term, snapshot=old))
    rd = n2.ready()
    assert rd.snapshot is None
    assert n2.status().last_log_index == 4


def test_follower_append_below_snapshot_is_answered_with_commit() -> None:
    net = Network(3)
    net.elect("n1")
    _fill(net, "n1", 3)
    net.tick_all(2)
    n2 = net.node("n2")
    n2.compact(3, b"s")
    n2.step(AppendEntries(src="n1", dst="n2", term=n2.term, prev_index=1, prev_term=1))
    (resp,) = n2.ready().messages
    assert resp.describe().endswith(f"index={n2.commit}")
