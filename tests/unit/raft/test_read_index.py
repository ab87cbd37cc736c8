"""ReadIndex (thesis §6.4): commit-in-term first, one heartbeat round per batch."""

from __future__ import annotations

from raftkv.raft import AppendEntriesResponse, Heartbeat
from tests.unit.raft.raftnet import Network


def test_read_index_confirms_with_one_heartbeat_round() -> None:
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    n1.read_index("r1")
    net.stabilize()
    assert [(r.request_id, r.index) for r in net.peers["n1"].read_states] == [("r1", 1)]


def test_reads_wait_for_a_commit_in_the_current_term() -> None:
    net = Network(3)
    net.drop_types(AppendEntriesResponse)  # the NOOP cannot commit
    net.elect("n1")
    n1 = net.node("n1")
    assert n1.commit == 0
    n1.read_index("early")
    net.stabilize()
    net.tick_all(2)
    assert net.peers["n1"].read_states == []  # heartbeats answered, but no commit in this term
    net.recover()
    net.tick_all(2)
    assert [(r.request_id, r.index) for r in net.peers["n1"].read_states] == [("early", 1)]


def test_reads_are_batched_into_rounds() -> None:
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    n1.read_index("a")  # starts round 1
    net.process("n1")
    sent = [m for m in net.queue if isinstance(m, Heartbeat)]
    assert len(sent) == 2
    for i in range(10):  # join the next batch: no new heartbeats yet
        n1.read_index(f"b{i}")
    net.process("n1")
    assert len([m for m in net.queue if isinstance(m, Heartbeat)]) == 2
    net.stabilize()
    got = sorted(r.request_id for r in net.peers["n1"].read_states)
    assert got == sorted(["a"] + [f"b{i}" for i in range(10)])
    hb = [m for m in net.delivered if isinstance(m, Heartbeat)]
    assert len(hb) == 4  # two rounds to two followers


def test_read_not_released_without_quorum() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n2")
    net.isolate("n3")
    net.node("n1").read_index("r")
    net.stabilize()
    net.tick("n1", 3)
    net.stabilize()
    assert net.peers["n1"].read_states == []
    net.recover()
    net.tick_all(1)
    assert [r.request_id for r in net.peers["n1"].read_states] == ["r"]
