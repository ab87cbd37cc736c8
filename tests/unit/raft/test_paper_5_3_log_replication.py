"""Raft §5.3 "Log replication", one test per rule of the paper (init, act, check)."""

from __future__ import annotations

import pytest

from raftkv.raft import AppendEntries, AppendEntriesResponse, Role
from tests.unit.raft.raftnet import Network


def test_leader_appends_command_then_sends_append_entries() -> None:
    # "The leader appends the command to its log as a new entry, then issues AppendEntries RPCs
    # in parallel to each of the other servers to replicate the entry."
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    idx = n1.propose(b"cmd")
    rd = n1.ready()
    assert [e.data for e in rd.entries] == [b"cmd"] and rd.entries[0].index == idx
    aes = [m for m in rd.messages if isinstance(m, AppendEntries)]
    assert sorted(m.dst for m in aes) == ["n2", "n3"]
    assert all(m.entries[-1].data == b"cmd" for m in aes)


def test_leader_commits_after_majority_and_followers_learn_commit() -> None:
    # "A log entry is committed once the leader that created the entry has replicated it on a
    # majority of the servers ... the leader includes [the highest committed index] in future
    # AppendEntries RPCs (including heartbeats) so that the other servers eventually find out."
    net = Network(5)
    net.elect("n1")
    net.isolate("n4")
    net.isolate("n5")
    net.node("n1").propose(b"x")
    net.stabilize()
    assert net.node("n1").commit == 2
    net.tick_all(1)
    assert net.node("n2").commit == 2 and net.node("n3").commit == 2
    assert net.node("n4").commit == 0


def test_follower_rejects_append_without_matching_prev_entry() -> None:
    # "If the follower does not find an entry in its log with the same index and term, then it
    # refuses the new entries."
    net = Network(3, logs={"n2": [1, 1]})
    n2 = net.node("n2")
    n2.step(AppendEntries(src="n1", dst="n2", term=2, prev_index=2, prev_term=2))
    (resp,) = n2.ready().messages
    assert isinstance(resp, AppendEntriesResponse) and resp.reject
    assert (resp.index, resp.hint_term, resp.hint_index) == (2, 1, 1)
    n2.step(AppendEntries(src="n1", dst="n2", term=2, prev_index=5, prev_term=2))
    (resp,) = n2.ready().messages
    assert resp.reject and (resp.hint_term, resp.hint_index) == (0, 3)  # log too short


def test_conflicting_entries_are_deleted_with_all_that_follow() -> None:
    # "If an existing entry conflicts with a new one (same index but different terms), delete the
    # existing entry and all that follow it; append any new entries not already in the log."
    net = Network(3, logs={"n2": [1, 1, 2, 2, 2]})
    n2 = net.node("n2")
    from raftkv.raft import Entry

    n2.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=3,
            prev_index=2,
            prev_term=1,
            entries=(Entry(index=3, term=3),),
        )
    )
    rd = n2.ready()
    assert net.terms("n2") == [1, 1, 3]
    assert [e.index for e in rd.entries] == [3]  # the driver replaces its stored suffix from 3
    n2.advance(rd)
    # a duplicate (already present) append changes nothing
    n2.step(
        AppendEntries(
            src="n1", dst="n2", term=3, prev_index=1, prev_term=1, entries=(Entry(index=2, term=1),)
        )
    )
    assert net.terms("n2") == [1, 1, 3]


# Raft Figure 7: the leader (term 8 here after its election) and followers a-f.
FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIG7_FOLLOWERS))
def test_figure_7_leader_forces_follower_logs_to_match(case: str) -> None:
    # "the leader handles inconsistencies by forcing the followers' logs to duplicate its own"
    follower = FIG7_FOLLOWERS[case]
    net = Network(3, logs={"n1": FIG7_LEADER, "n2": follower, "n3": FIG7_LEADER})
    net.node("n1").campaign()
    net.stabilize()
    if net.node("n1").role is not Role.LEADER:  # (d) has a higher last term: it may block n1
        net.filters.append(lambda m: "n2" in (m.src, m.dst) and not isinstance(m, AppendEntries))
        net.node("n1").campaign()
        net.stabilize()
        net.recover()
    assert net.node("n1").role is Role.LEADER
    net.tick_all(3)
    assert net.terms("n2") == net.terms("n1")
    # fast backtracking: at most a couple of rejections per term of divergence, not per entry
    rejects = [
        m
        for m in net.delivered
        if isinstance(m, AppendEntriesResponse) and m.reject and m.src == "n2"
    ]
    assert len(rejects) <= 3


def test_fast_backtracking_skips_a_whole_conflicting_term() -> None:
    leader = [1] * 3 + [3] * 50
    stale = [1] * 3 + [2] * 50
    net = Network(3, logs={"n1": leader, "n2": stale, "n3": leader})
    net.elect("n1")
    net.tick_all(2)
    rejects = [m for m in net.delivered if isinstance(m, AppendEntriesResponse) and m.reject]
    assert len(rejects) == 1
    assert (rejects[0].hint_term, rejects[0].hint_index) == (2, 4)
    assert net.terms("n2") == net.terms("n1")
