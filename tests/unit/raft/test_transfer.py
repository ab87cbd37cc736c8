"""Leadership transfer (thesis §3.10): stop proposals, catch the target up, TimeoutNow, abort."""

from __future__ import annotations

import pytest

from raftkv.raft import ConfigError, NotLeader, ProposalDropped, Role, TimeoutNow
from tests.unit.raft.raftnet import Network


def test_transfer_to_an_up_to_date_follower() -> None:
    net = Network(3)
    net.elect("n1")
    assert net.node("n1").transfer_leadership("n2") == "n2"
    net.stabilize()
    assert net.leader() == "n2"
    assert net.node("n1").role is Role.FOLLOWER
    assert net.node("n1").leader == "n2"


def test_transfer_to_a_lagging_follower_catches_it_up_first() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n3")
    for i in range(5):
        net.node("n1").propose(bytes([i]))
    net.stabilize()
    net.recover()
    n1 = net.node("n1")
    n1.transfer_leadership("n3")
    with pytest.raises(ProposalDropped):
        n1.propose(b"during transfer")
    net.process("n1")
    assert not any(isinstance(m, TimeoutNow) for m in net.queue)  # not caught up yet
    net.stabilize()
    assert net.leader() == "n3"
    assert net.node("n3").last_log_index >= 6
    net.node("n3").propose(b"after")
    net.stabilize()
    assert net.peers["n3"].applied[-1].data == b"after"


def test_transfer_aborts_after_an_election_timeout() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n2")
    n1 = net.node("n1")
    n1.transfer_leadership("n2")
    with pytest.raises(ProposalDropped):
        n1.propose(b"x")
    net.tick("n1", 10)
    assert n1.role is Role.LEADER
    assert n1.propose(b"x") > 0


def test_transfer_without_target_picks_the_most_up_to_date_follower() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n2")
    net.node("n1").propose(b"x")
    net.stabilize()
    net.recover()
    assert net.node("n1").transfer_leadership() == "n3"


def test_transfer_errors() -> None:
    net = Network(3)
    net.elect("n1")
    with pytest.raises(NotLeader):
        net.node("n2").transfer_leadership("n3")
    with pytest.raises(ConfigError):
        net.node("n1").transfer_leadership("nope")
    assert net.node("n1").transfer_leadership("n1") == "n1"  # already the leader: no-op
    assert net.node("n1").propose(b"ok") > 0
