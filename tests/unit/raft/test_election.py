"""Leader election: randomized timeouts, pre-vote, check-quorum and the leader lease."""

from __future__ import annotations

import random

import pytest

from raftkv.raft import (
    AppendEntries,
    ConfigError,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
    Role,
)
from tests.unit.raft.raftnet import Network, make_config


def test_three_nodes_elect_exactly_one_leader_by_ticking() -> None:
    net = Network(3, seed=7)
    for _ in range(40):
        net.tick_all()
        if net.leader():
            break
    leader = net.leader()
    assert leader is not None
    leaders = [i for i in net.ids if net.node(i).role is Role.LEADER]
    assert leaders == [leader]
    term = net.node(leader).term
    for i in net.ids:
        assert net.node(i).term == term
        assert net.node(i).leader == leader


def test_election_timeout_is_randomized_from_the_injected_rng() -> None:
    def ticks_until_campaign(seed: int) -> int:
        node = RaftNode(make_config("a", ["a", "b", "c"]), random.Random(seed))
        for t in range(1, 100):
            node.tick()
            if node.role is not Role.FOLLOWER:
                return t
        raise AssertionError("never campaigned")

    seen = {ticks_until_campaign(s) for s in range(30)}
    assert all(10 <= t < 20 for t in seen)
    assert len(seen) > 3  # randomized
    assert ticks_until_campaign(5) == ticks_until_campaign(5)  # deterministic per seed


def test_pre_vote_does_not_bump_terms() -> None:
    net = Network(3)
    net.isolate("n1")
    net.node("n1").campaign()
    net.stabilize()
    assert net.node("n1").role is Role.PRE_CANDIDATE
    assert [net.node(i).term for i in net.ids] == [0, 0, 0]


def test_without_pre_vote_an_isolated_node_bumps_its_term() -> None:
    net = Network(3, pre_vote=False)
    net.isolate("n1")
    net.node("n1").campaign()
    net.stabilize()
    assert net.node("n1").role is Role.CANDIDATE
    assert net.node("n1").term == 1


def test_rejoining_partitioned_node_does_not_depose_leader() -> None:
    net = Network(3)
    net.elect("n1")
    term = net.node("n1").term
    net.isolate("n3")
    for _ in range(60):  # n3 times out repeatedly while isolated
        net.tick_all()
    assert net.node("n3").term == term  # pre-vote: no term inflation
    net.recover()
    net.tick_all(30)
    assert net.leader() == "n1"
    assert net.node("n1").term == term
    assert net.node("n3").leader == "n1"


def test_leader_without_quorum_steps_down() -> None:
    net = Network(3)
    net.elect("n1")
    net.isolate("n1")
    net.tick("n1", 10)  # the first check still sees the election's responses
    net.stabilize()
    assert net.node("n1").role is Role.LEADER
    net.tick("n1", 10)
    net.stabilize()
    assert net.node("n1").role is Role.FOLLOWER


def test_leader_lease_followers_ignore_vote_requests() -> None:
    net = Network(3, pre_vote=False)
    net.elect("n1")
    term = net.node("n1").term
    n2 = net.node("n2")
    last = n2.last_log_index
    n2.step(RequestVote(src="n3", dst="n2", term=term + 5, last_log_index=last, last_log_term=term))
    assert n2.term == term
    assert not n2.has_ready() or not n2.ready().messages


def test_leadership_transfer_vote_bypasses_lease() -> None:
    net = Network(3, pre_vote=False)
    net.elect("n1")
    term = net.node("n1").term
    n2 = net.node("n2")
    last = n2.last_log_index
    n2.step(
        RequestVote(
            src="n3",
            dst="n2",
            term=term + 1,
            last_log_index=last,
            last_log_term=term,
            transfer=True,
        )
    )
    assert n2.term == term + 1
    msgs = n2.ready().messages
    assert any(isinstance(m, RequestVoteResponse) and m.granted for m in msgs)


def test_vote_only_once_per_term() -> None:
    node = RaftNode(
        make_config("a", ["a", "b", "c"], pre_vote=False, check_quorum=False), random.Random(1)
    )
    node.step(RequestVote(src="b", dst="a", term=1, last_log_index=0, last_log_term=0))
    node.step(RequestVote(src="c", dst="a", term=1, last_log_index=0, last_log_term=0))
    rd = node.ready()
    grants = {m.dst: m.granted for m in rd.messages if isinstance(m, RequestVoteResponse)}
    assert grants == {"b": True, "c": False}
    assert rd.hard_state is not None and rd.hard_state.voted_for == "b"


def test_split_vote_resolves() -> None:
    net = Network(3, seed=3, pre_vote=False)
    net.node("n1").campaign()
    net.node("n2").campaign()
    net.stabilize()
    for _ in range(60):
        if net.leader():
            break
        net.tick_all()
    assert net.leader() is not None


def test_candidate_steps_down_on_append_from_leader_of_same_term() -> None:
    node = RaftNode(make_config("a", ["a", "b", "c"], pre_vote=False), random.Random(1))
    node.campaign()
    assert node.role is Role.CANDIDATE
    node.step(AppendEntries(src="b", dst="a", term=node.term, prev_index=0, prev_term=0))
    assert node.role is Role.FOLLOWER
    assert node.leader == "b"


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ConfigError):
        RaftNode(make_config("x", []), random.Random(1))
    with pytest.raises(ConfigError):
        RaftNode(make_config("a", ["a", "b"], election_tick=1, heartbeat_tick=1), random.Random(1))
    with pytest.raises(ConfigError):
        RaftNode(make_config("a", ["a", "a"]), random.Random(1))
