"""Log replication, commit, single-node clusters, ReadIndex basics, Ready/advance."""

from __future__ import annotations

import random

import pytest

from raftkv.raft import EntryKind, NotLeader, RaftNode, Role
from tests.unit.raft.raftnet import Network, make_config


def test_three_nodes_replicate_and_commit() -> None:
    net = Network(3)
    net.elect("n1")
    idx = [net.node("n1").propose(f"cmd{i}".encode()) for i in range(5)]
    net.stabilize()
    assert idx == [2, 3, 4, 5, 6]  # index 1 opens the first term: the bootstrap configuration
    leader = net.peers["n1"]
    assert [e.data for e in leader.applied] == [f"cmd{i}".encode() for i in range(5)]
    assert net.node("n1").commit == 6
    net.tick_all(2)  # heartbeats carry the commit index to the followers
    for i in net.ids:
        p = net.peers[i]
        assert [e.data for e in p.applied] == [f"cmd{i}".encode() for i in range(5)]
        assert [e.index for e in p.disk.entries] == [1, 2, 3, 4, 5, 6]
        assert p.disk.entries[0].kind is EntryKind.CONFIG


def test_propose_on_follower_raises_not_leader_with_hint() -> None:
    net = Network(3)
    net.elect("n1")
    with pytest.raises(NotLeader) as ei:
        net.node("n2").propose(b"x")
    assert ei.value.leader_hint == "n1"
    # a read on a follower is asked of its leader (tests/unit/raft/test_follower_read.py); a
    # candidate knows no leader to ask
    net.node("n2").campaign()
    with pytest.raises(NotLeader):
        net.node("n2").read_index("r")


def test_commit_needs_a_quorum() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n2")
    net.isolate("n3")
    net.node("n1").propose(b"x")
    net.stabilize()
    assert net.node("n1").commit == 1
    net.recover()
    net.tick_all(2)
    assert net.node("n1").commit == 2


def test_single_node_cluster() -> None:
    node = RaftNode(make_config("solo", ["solo"]), random.Random(1))
    for _ in range(20):
        node.tick()
        if node.role is Role.LEADER:
            break
    assert node.role is Role.LEADER
    rd = node.ready()
    # a brand-new cluster's first leader writes its configuration (from flags) into the log
    assert [e.kind for e in rd.entries] == [EntryKind.CONFIG]
    assert [e.index for e in rd.committed_entries] == [1]  # committed once persisted (same Ready)
    assert node.status().config_index == 1
    assert rd.soft_state == (Role.LEADER, "solo")
    node.advance(rd)
    idx = node.propose(b"hello")
    node.read_index("r1")
    rd = node.ready()
    assert [e.index for e in rd.entries] == [idx]
    assert [e.data for e in rd.committed_entries] == [b"hello"]
    assert [(r.request_id, r.index) for r in rd.read_states] == [("r1", 2)]
    assert rd.messages == ()
    node.advance(rd)
    assert not node.has_ready()
    st = node.status()
    assert (st.commit_index, st.applied_index, st.last_log_index) == (2, 2, 2)


def test_ready_hands_everything_over_once() -> None:
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    n1.propose(b"a")
    rd = n1.ready()
    assert [e.data for e in rd.entries] == [b"a"]
    assert len(rd.messages) == 2
    rd2 = n1.ready()
    assert rd2.entries == () and rd2.messages == ()


def test_status_fields() -> None:
    net = Network(3)
    net.elect("n2")
    st = net.node("n2").status()
    assert st.role is Role.LEADER and st.leader == "n2" and st.id == "n2"
    assert st.members == ("n1", "n2", "n3")
    assert st.progress == {"n1": 1, "n2": 1, "n3": 1}
    assert net.node("n1").status().progress == {}


def test_restart_from_disk_keeps_log_and_term() -> None:
    net = Network(3)
    net.elect("n1")
    for i in range(3):
        net.node("n1").propose(bytes([i]))
    net.stabilize()
    term = net.node("n2").term
    net.restart("n2")
    n2 = net.node("n2")
    assert n2.term == term and n2.last_log_index == 4
    net.tick_all(3)
    assert len(net.peers["n2"].applied) == 3


def test_describe_gives_readable_one_line_transcripts() -> None:
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    n1.propose(b"a")
    n1.propose(b"b")
    rd = n1.ready()
    assert rd.describe() == "Ready(entries=[2/1..3/1] msgs=2)"
    assert [m.describe() for m in rd.messages] == [
        "n1->n2 AppendEntries term=1 prev=1/1 entries=[2/1..3/1] commit=1",
        "n1->n3 AppendEntries term=1 prev=1/1 entries=[2/1..3/1] commit=1",
    ]
    n1.advance(rd)
    n1.read_index("r")
    assert [m.describe() for m in n1.ready().messages] == [
        "n1->n2 Heartbeat term=1 commit=1 ctx=1",
        "n1->n3 Heartbeat term=1 commit=1 ctx=1",
    ]


def test_must_sync_only_for_entries_or_a_new_term_or_vote() -> None:
    # etcd's MustSync: the core, not the driver, decides what needs an fsync
    net = Network(3)
    net.elect("n1")
    net.node("n1").propose(b"a")
    net.stabilize()
    for nid in net.ids:
        prev = (0, None)
        for rd in net.peers[nid].readies:
            hs = rd.hard_state
            new_term_or_vote = hs is not None and (hs.term, hs.voted_for) != prev
            assert rd.must_sync == (bool(rd.entries) or new_term_or_vote), (nid, rd.describe())
            if hs is not None:
                prev = (hs.term, hs.voted_for)
    commit_only = [
        rd
        for rd in net.peers["n1"].readies
        if rd.hard_state is not None and not rd.entries and not rd.must_sync
    ]
    assert commit_only  # the leader's commit index moved alone at least once: no fsync
