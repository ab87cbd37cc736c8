"""Raft §5.4 "Safety": the election restriction and committing entries from previous terms."""

from __future__ import annotations

import random

import pytest

from raftkv.raft import (
    AppendEntriesResponse,
    Entry,
    HardState,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
    RestoredState,
)
from tests.unit.raft.raftnet import Network, make_config


@pytest.mark.parametrize(
    ("cand_index", "cand_term", "granted"),
    [
        (3, 2, True),  # same last term, same length
        (4, 2, True),  # same last term, longer
        (2, 2, False),  # same last term, shorter
        (1, 3, True),  # higher last term wins even if shorter
        (9, 1, False),  # lower last term loses even if longer
    ],
)
def test_5_4_1_voter_denies_a_less_up_to_date_candidate(
    cand_index: int, cand_term: int, granted: bool
) -> None:
    # "the voter denies its vote if its own log is more up-to-date than that of the candidate"
    entries = [Entry(index=1, term=1), Entry(index=2, term=2), Entry(index=3, term=2)]
    node = RaftNode(
        make_config("a", ["a", "b", "c"]),
        random.Random(1),
        RestoredState(hard_state=HardState(term=2), entries=entries),
    )
    node.step(
        RequestVote(src="b", dst="a", term=5, last_log_index=cand_index, last_log_term=cand_term)
    )
    (resp,) = node.ready().messages
    assert isinstance(resp, RequestVoteResponse) and resp.granted is granted


class _CountsOldTerms(RaftNode):
    """A deliberately broken node: commits entries of previous terms by counting replicas."""

    def _may_commit_by_counting(self, index: int) -> bool:
        return True


@pytest.mark.parametrize(
    ("cls", "commit_after_old_majority"), [(RaftNode, 0), (_CountsOldTerms, 2)]
)
def test_5_4_2_figure_8_leader_never_commits_previous_term_entries_by_counting(
    cls: type[RaftNode], commit_after_old_majority: int
) -> None:
    # "Raft never commits log entries from previous terms by counting replicas. Only log entries
    # from the leader's current term are committed by counting replicas."
    # Figure 8 (c): S1, leader of term 4, has replicated the term-2 entry at index 2 on a
    # majority (S1, S2, S3) while S5 holds a term-3 entry at index 2 and could still be elected.
    s1 = cls(
        make_config("s1", ["s1", "s2", "s3", "s4", "s5"], pre_vote=False),
        random.Random(1),
        RestoredState(
            hard_state=HardState(term=3),
            entries=[Entry(index=1, term=1), Entry(index=2, term=2)],
        ),
    )
    s1.campaign()
    for v in ("s2", "s3"):
        s1.step(RequestVoteResponse(src=v, dst="s1", term=4, granted=True))
    assert s1.role.name == "LEADER" and s1.term == 4
    assert s1.term_at(3) == 4  # the NOOP that opens term 4
    s1.advance(s1.ready())
    for f in ("s2", "s3"):  # index 2 (term 2) is now on a majority
        s1.step(AppendEntriesResponse(src=f, dst="s1", term=4, index=2))
    assert s1.commit == commit_after_old_majority  # 0: NOT committed by counting (2 if broken)
    if cls is not RaftNode:
        return
    s1.step(AppendEntriesResponse(src="s2", dst="s1", term=4, index=3))
    assert s1.commit == 0
    s1.step(AppendEntriesResponse(src="s3", dst="s1", term=4, index=3))
    assert s1.commit == 3  # the term-4 entry commits, and index 2 with it (Log Matching)
    assert [e.index for e in s1.ready().committed_entries] == [1, 2, 3]


def test_5_4_2_figure_8_full_scenario_on_a_network() -> None:
    # the same trap with real message exchange: S5 must never get index 2 committed under it
    logs = {"n1": [1, 2], "n2": [1, 2], "n3": [1], "n4": [1], "n5": [1, 3]}
    net = Network(5, logs=logs, pre_vote=False)
    net.elect("n1")
    net.tick_all(3)
    for nid in net.ids:
        assert net.node(nid).term_at(2) == 2
        assert net.node(nid).commit == 3
