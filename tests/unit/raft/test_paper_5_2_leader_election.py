"""Raft §5.1 "Raft basics" (terms) and §5.2 "Leader election", one test per rule (init, act, check).

Pre-vote is switched off where the paper's plain algorithm is being tested.
"""

from __future__ import annotations

import random

import pytest

from raftkv.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    Heartbeat,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
    RestoredState,
    Role,
)
from tests.unit.raft.raftnet import Network, make_config


def _node(**kw: object) -> RaftNode:
    cfg = make_config("a", ["a", "b", "c", "d", "e"], pre_vote=False, check_quorum=False, **kw)
    return RaftNode(cfg, random.Random(1))


@pytest.mark.parametrize("role", ["follower", "candidate", "leader"])
def test_5_1_server_updates_term_and_reverts_to_follower_on_higher_term(role: str) -> None:
    # "If a candidate or leader discovers that its term is out of date, it immediately reverts
    # to follower state." / "If one server's current term is smaller than the other's, then it
    # updates its current term to the larger value."
    net = Network(3, pre_vote=False, check_quorum=False)
    if role == "leader":
        net.elect("n1")
    elif role == "candidate":
        net.node("n1").campaign()
    n1 = net.node("n1")
    n1.step(AppendEntries(src="n2", dst="n1", term=9, prev_index=0, prev_term=0))
    assert (n1.term, n1.role, n1.leader) == (9, Role.FOLLOWER, "n2")


def test_5_1_stale_term_requests_are_rejected() -> None:
    # "If a server receives a request with a stale term number, it rejects the request."
    node = _node()
    node.step(Heartbeat(src="b", dst="a", term=5))
    node.ready()
    node.step(RequestVote(src="c", dst="a", term=4, last_log_index=9, last_log_term=4))
    node.step(AppendEntries(src="c", dst="a", term=4, prev_index=0, prev_term=0))
    msgs = node.ready().messages
    assert node.term == 5 and node.leader == "b"
    assert not any(isinstance(m, RequestVoteResponse) and m.granted for m in msgs)
    # the stale leader is told our term so it steps down
    assert all(m.term == 5 for m in msgs if isinstance(m, AppendEntriesResponse))


def test_5_2_follower_stays_follower_while_it_hears_from_a_leader() -> None:
    # "A server remains in follower state as long as it receives valid RPCs from a leader."
    net = Network(3)
    net.elect("n1")
    for _ in range(100):
        net.tick_all()
    assert net.leader() == "n1" and net.node("n1").term == 1


def test_5_2_follower_times_out_and_starts_an_election() -> None:
    # "To begin an election, a follower increments its current term and transitions to candidate
    # state. It then votes for itself and issues RequestVote RPCs in parallel to each of the other
    # servers."
    node = _node()
    for _ in range(20):
        node.tick()
    rd = node.ready()
    assert node.role is Role.CANDIDATE and node.term == 1
    assert rd.hard_state is not None and rd.hard_state.voted_for == "a" and rd.hard_state.term == 1
    votes = [m for m in rd.messages if isinstance(m, RequestVote)]
    assert sorted(m.dst for m in votes) == ["b", "c", "d", "e"]
    assert all(m.term == 1 and not m.pre_vote for m in votes)


@pytest.mark.parametrize(
    ("grants", "rejects", "role"),
    [
        (["b"], [], Role.CANDIDATE),
        (["b", "c"], [], Role.LEADER),
        (["b", "c", "d", "e"], [], Role.LEADER),
        ([], ["b", "c"], Role.CANDIDATE),
        ([], ["b", "c", "d"], Role.FOLLOWER),
        (["b"], ["c", "d"], Role.CANDIDATE),
        (["b"], ["c", "d", "e"], Role.FOLLOWER),
    ],
)
def test_5_2_candidate_wins_with_a_majority_of_votes(
    grants: list[str], rejects: list[str], role: Role
) -> None:
    # "A candidate wins an election if it receives votes from a majority of the servers in the
    # full cluster for the same term."
    node = _node()
    node.campaign()
    for v in grants:
        node.step(RequestVoteResponse(src=v, dst="a", term=1, granted=True))
    for v in rejects:
        node.step(RequestVoteResponse(src=v, dst="a", term=1, granted=False))
    assert node.role is role


def test_5_2_votes_from_another_term_do_not_count() -> None:
    node = _node()
    node.campaign()
    node.step(RequestVoteResponse(src="b", dst="a", term=1, granted=True))
    node.campaign()  # term 2
    node.step(RequestVoteResponse(src="c", dst="a", term=1, granted=True))  # stale
    node.step(RequestVoteResponse(src="b", dst="a", term=1, granted=True))  # stale
    assert node.role is Role.CANDIDATE
    node.step(RequestVoteResponse(src="c", dst="a", term=2, granted=True))
    node.step(RequestVoteResponse(src="c", dst="a", term=2, granted=True))  # duplicate
    assert node.role is Role.CANDIDATE
    node.step(RequestVoteResponse(src="d", dst="a", term=2, granted=True))
    assert node.role is Role.LEADER


def test_5_2_each_server_votes_first_come_first_served_once_per_term() -> None:
    # "Each server will vote for at most one candidate in a given term, on a first-come-first-
    # served basis."
    node = _node()
    for cand in ["b", "c", "b"]:
        node.step(RequestVote(src=cand, dst="a", term=1, last_log_index=0, last_log_term=0))
    msgs = [m for m in node.ready().messages if isinstance(m, RequestVoteResponse)]
    assert [(m.dst, m.granted) for m in msgs] == [("b", True), ("c", False), ("b", True)]


def test_5_2_candidate_returns_to_follower_when_a_leader_appears() -> None:
    # "If the leader's term is at least as large as the candidate's current term, then the
    # candidate recognizes the leader as legitimate and returns to follower state."
    node = _node()
    node.campaign()
    node.step(Heartbeat(src="c", dst="a", term=1))
    assert node.role is Role.FOLLOWER and node.leader == "c"


def test_5_2_split_vote_times_out_and_starts_a_new_election() -> None:
    # "each candidate will time out and start a new election by incrementing its term"
    node = _node()
    node.campaign()
    for _ in range(20):
        node.tick()
    assert node.role is Role.CANDIDATE and node.term == 2


def test_5_2_leader_sends_heartbeats_every_heartbeat_tick() -> None:
    net = Network(3, heartbeat_tick=2)
    net.elect("n1")
    n1 = net.node("n1")
    n1.tick()
    assert not any(isinstance(m, Heartbeat) for m in n1.ready().messages)
    n1.tick()
    hbs = [m for m in n1.ready().messages if isinstance(m, Heartbeat)]
    assert sorted(m.dst for m in hbs) == ["n2", "n3"]


def test_5_2_rejected_vote_requests_do_not_restart_the_election_timer() -> None:
    # Figure 2, Followers: "If election timeout elapses without receiving AppendEntries RPC from
    # current leader or granting vote to candidate: convert to candidate". Regression
    # (core-bugs.md #2): stale candidates with higher terms used to livelock the election.
    entries = [Entry(index=1, term=1), Entry(index=2, term=1)]
    node = RaftNode(
        make_config("a", ["a", "b", "c"], pre_vote=False),
        random.Random(1),
        RestoredState(hard_state=HardState(term=1), entries=entries),
    )
    term = 1
    for t in range(1, 40):
        if node.role is not Role.FOLLOWER:
            break
        if t % 3 == 0:  # a stale candidate (shorter log) campaigns every 3 ticks
            term = node.term + 1
            node.step(RequestVote(src="b", dst="a", term=term, last_log_index=1, last_log_term=1))
        node.tick()
    assert node.role is Role.CANDIDATE, "the up-to-date node never campaigned"
    assert t <= 20  # within its randomized timeout [10, 20)


def test_5_2_granted_vote_restarts_the_election_timer() -> None:
    node = _node()
    for _ in range(9):
        node.tick()
    node.step(RequestVote(src="b", dst="a", term=1, last_log_index=0, last_log_term=0))
    for _ in range(9):
        node.tick()
    assert node.role is Role.FOLLOWER
