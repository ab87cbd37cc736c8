"""Follower reads (thesis §6.4, etcd's MsgReadIndex): a follower asks its leader for a read
index; the leader answers once a quorum confirmed its leadership after the request arrived."""

from __future__ import annotations

import pytest

from raftkv.raft import AppendEntriesResponse, NotLeader, ReadIndex, ReadIndexResponse, ReadState
from tests.unit.raft.raftnet import Network


def _responses(net: Network) -> list[ReadIndexResponse]:
    return [m for m in net.delivered if isinstance(m, ReadIndexResponse)]


def test_follower_gets_the_leaders_confirmed_commit_index() -> None:
    net = Network(3)
    net.elect("n1")
    net.node("n1").propose(b"x")
    net.stabilize()
    commit = net.node("n1").commit
    net.node("n2").read_index("f1")
    net.stabilize()
    assert net.peers["n2"].read_states == [ReadState("f1", commit)]
    assert net.peers["n1"].read_states == []  # the leader's own ReadStates are its own reads
    asked = [m for m in net.delivered if isinstance(m, ReadIndex)]
    assert [(m.src, m.dst, m.request_id) for m in asked] == [("n2", "n1", "f1")]
    # the answer came after a heartbeat round: the leader confirmed it still leads
    i_ask = net.delivered.index(asked[0])
    i_ans = net.delivered.index(_responses(net)[0])
    beats = [m for m in net.delivered[i_ask:i_ans] if type(m).__name__ == "HeartbeatResponse"]
    assert beats and all(m.context > 0 for m in beats)


def test_same_request_id_on_leader_and_follower_are_told_apart() -> None:
    net = Network(3)
    net.elect("n1")
    net.node("n1").read_index("r1")
    net.node("n2").read_index("r1")
    net.node("n3").read_index("r1")
    net.stabilize()
    commit = net.node("n1").commit
    for nid in ("n1", "n2", "n3"):
        assert net.peers[nid].read_states == [ReadState("r1", commit)], nid


def test_new_leader_answers_only_after_committing_in_its_term() -> None:
    net = Network(3)
    net.elect("n1")
    net.drop_types(AppendEntriesResponse)  # n2's NOOP will not commit while this holds
    net.node("n1").transfer_leadership("n2")
    net.stabilize()
    n2 = net.node("n2")
    assert net.leader() == "n2" and n2.term_at(n2.commit) != n2.term
    net.node("n1").read_index("early")
    net.stabilize()
    assert net.peers["n1"].read_states == []  # deferred: n2's commit index is not known current
    net.recover()
    net.tick_all(2)
    (rs,) = net.peers["n1"].read_states
    assert rs.request_id == "early" and n2.term_at(rs.index) == n2.term


def test_cut_off_leader_never_answers_a_follower() -> None:
    # 5 nodes: the leader keeps only n2; it cannot confirm its leadership, n2 gets no index
    net = Network(5, check_quorum=False)
    net.elect("n1")
    for other in ("n3", "n4", "n5"):
        net.cut("n1", other)
        net.cut("n2", other)
    net.node("n2").read_index("f")
    net.tick_all(5)
    assert net.peers["n2"].read_states == []
    assert _responses(net) == []
    # the majority elects a new leader; the old one's pending follower reads are dropped
    net.node("n3").campaign()
    net.stabilize()
    net.tick_all(2)
    assert net.leader() == "n3"
    net.recover()
    net.tick_all(3)
    assert net.peers["n2"].read_states == []
    net.node("n2").read_index("f2")
    net.stabilize()
    assert [rs.request_id for rs in net.peers["n2"].read_states] == ["f2"]


def test_follower_without_leader_raises() -> None:
    net = Network(3)
    with pytest.raises(NotLeader):
        net.node("n2").read_index("r")


def test_stale_term_answer_is_ignored() -> None:
    net = Network(3)
    net.elect("n1")
    n2 = net.node("n2")
    n2.step(
        ReadIndexResponse(
            src="n1", dst="n2", term=n2.term - 1 if n2.term > 1 else 0, request_id="old", index=99
        )
    )
    assert n2.ready().read_states == ()
