"""Mutation check of the harness: break the core on purpose and make sure the checkers notice.

Each mutation monkeypatches ``RaftNode`` (or its log) into a classic wrong Raft, then runs its
probes — named scenarios first, then random seeds — until one fails. The test passes only if a
probe fails with one of the properties expected for that bug, within the budget. A harness whose
checkers are blind (or too weak) turns these tests red.

Mutations go through the core's seams where it offers one (``_may_commit_by_counting``) and
otherwise wrap public methods or touch a few internals (``_start_reads``, ``_read_states``). If
the core is refactored and a name disappears, the test fails with "core internals changed":
update the mutation, do not delete it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from raftkv.raft import NotLeader, RaftNode, ReadState, Ready, RequestVoteResponse, Role
from raftkv.raft.log import RaftLog
from tests.unit.sim import scenarios, scenarios_membership
from tests.unit.sim.cluster import SimFailure
from tests.unit.sim.runner import run_seed


def _require(obj: object, *names: str) -> None:
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        pytest.fail(f"core internals changed (no {missing} on {obj}): update this mutation")


def votes_from_stale_term(mp: pytest.MonkeyPatch) -> None:
    """A candidate counts a grant that was given in an earlier term (the term check is lost)."""
    orig = RaftNode.step

    def step(self: RaftNode, m: object) -> None:
        if (
            isinstance(m, RequestVoteResponse)
            and m.granted
            and not m.pre_vote
            and self.status().role is Role.CANDIDATE
            and m.term < self.status().term
        ):
            m = dataclasses.replace(m, term=self.status().term)
        orig(self, m)  # type: ignore[arg-type]

    mp.setattr(RaftNode, "step", step)


def counts_any_vote_answer(mp: pytest.MonkeyPatch) -> None:
    """The core's vote filter seam accepts every answer: pre-vote grants count as votes, and
    answers from another election count too."""
    _require(RaftNode, "_counts_vote")
    mp.setattr(RaftNode, "_counts_vote", lambda self, m: True)


def commit_old_term_by_counting(mp: pytest.MonkeyPatch) -> None:
    """The leader commits whatever a majority stores, whatever its term (Figure 8's bug), through
    the core's seam for exactly this rule."""
    _require(RaftNode, "_may_commit_by_counting")
    mp.setattr(RaftNode, "_may_commit_by_counting", lambda self, index: True)


def vote_not_persisted(mp: pytest.MonkeyPatch) -> None:
    """The hard state handed to the driver forgets ``voted_for``: a crash can forget a vote."""
    orig = RaftNode.ready

    def ready(self: RaftNode) -> Ready:
        rd = orig(self)
        if rd.hard_state is not None and rd.hard_state.voted_for is not None:
            hs = dataclasses.replace(rd.hard_state, voted_for=None)
            rd = dataclasses.replace(rd, hard_state=hs)
        return rd

    mp.setattr(RaftNode, "ready", ready)


def no_election_restriction(mp: pytest.MonkeyPatch) -> None:
    """Votes go to candidates whose log is behind (Raft §5.4.1 is skipped)."""
    _require(RaftLog, "is_up_to_date")
    mp.setattr(RaftLog, "is_up_to_date", lambda self, last_index, last_term: True)


def read_without_confirmation(mp: pytest.MonkeyPatch) -> None:
    """ReadIndex answers at once, without a heartbeat round proving leadership (thesis §6.4)."""

    def read_index(self: RaftNode, request_id: str) -> None:
        _require(self, "_read_states", "commit")
        st = self.status()
        if st.role is not Role.LEADER:
            raise NotLeader(st.leader)
        self._read_states.append(ReadState(request_id, self.commit))

    mp.setattr(RaftNode, "read_index", read_index)


def read_before_own_term_commit(mp: pytest.MonkeyPatch) -> None:
    """A new leader serves ReadIndex before it committed an entry of its own term, when its
    commit index may still lag what the previous leader committed (thesis §6.4 step 1)."""
    _require(RaftNode, "_start_reads")

    def read_index(self: RaftNode, request_id: str) -> None:
        st = self.status()
        if st.role is not Role.LEADER:
            raise NotLeader(st.leader)
        self._start_reads([request_id])

    mp.setattr(RaftNode, "read_index", read_index)


def config_at_commit(mp: pytest.MonkeyPatch) -> None:
    """A configuration takes effect when its entry COMMITS instead of when it is appended (the
    thesis §4.1 rule), through the core's seam for exactly this rule."""
    _require(RaftNode, "_conf_limit")
    mp.setattr(RaftNode, "_conf_limit", lambda self: self.commit)


def overlapping_changes(mp: pytest.MonkeyPatch) -> None:
    """The leader accepts a membership change while the previous one is still uncommitted."""
    _require(RaftNode, "_conf_change_in_flight")
    mp.setattr(RaftNode, "_conf_change_in_flight", lambda self: False)


def learner_votes_count(mp: pytest.MonkeyPatch) -> None:
    """Learners are asked for their vote and their grants count (they are treated as voters in
    elections, though not in commit)."""
    _require(RaftNode, "_electorate", "membership")
    mp.setattr(
        RaftNode,
        "_electorate",
        lambda self: tuple(sorted(self.membership.voters + self.membership.learners)),
    )


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[pytest.MonkeyPatch], None]
    expect: frozenset[str]
    probes: tuple[Callable[[], object], ...] = ()
    seeds: Iterable[int] = ()


MUTATIONS = [
    Mutation(
        "votes_from_stale_term",
        votes_from_stale_term,
        frozenset({"Election Safety"}),
        probes=(lambda: scenarios.stale_vote_grants(1),),
    ),
    Mutation(
        "counts_any_vote_answer",
        counts_any_vote_answer,
        frozenset({"Election Safety"}),
        probes=(lambda: scenarios.stale_vote_grants(1),),
        seeds=range(100),
    ),
    Mutation(
        "commit_old_term_by_counting",
        commit_old_term_by_counting,
        # with the rule check off: the consequence (Figure 8 (d)) must be caught
        frozenset({"Leader Completeness", "State Machine Safety", "No acknowledged write lost"}),
        probes=(lambda: scenarios.figure8(1, rule_checks=False),),
    ),
    Mutation(
        "vote_not_persisted",
        vote_not_persisted,
        # with the persist-before-send check off: the double vote after a crash must be caught
        frozenset({"Election Safety"}),
        probes=(lambda: scenarios.vote_forgotten_on_crash(1, rule_checks=False),),
    ),
    Mutation(
        "no_election_restriction",
        no_election_restriction,
        frozenset({"Leader Completeness", "State Machine Safety", "No acknowledged write lost"}),
        seeds=range(100),
    ),
    Mutation(
        "read_without_confirmation",
        read_without_confirmation,
        frozenset({"Linearizable reads"}),
        probes=(lambda: scenarios.old_leader_partitioned(1, check_quorum=False),),
        seeds=range(100),
    ),
    Mutation(
        "read_before_own_term_commit",
        read_before_own_term_commit,
        frozenset({"Linearizable reads"}),
        probes=(lambda: scenarios.read_on_new_leader(1),),
        seeds=range(100),
    ),
    Mutation(
        "config_at_commit",
        config_at_commit,
        # the rule check compares each node's configuration with the newest one in its log
        frozenset({"Configuration follows the log (thesis §4.1)"}),
        seeds=range(100),
    ),
    Mutation(
        "overlapping_changes",
        overlapping_changes,
        # with the one-change rule check off: the consequence must be caught
        frozenset({"Leader Completeness", "State Machine Safety", "No acknowledged write lost"}),
        probes=(lambda: scenarios_membership.one_change_at_a_time(1, rule_checks=False),),
    ),
    Mutation(
        "learner_votes_count",
        learner_votes_count,
        frozenset({"Leader Completeness", "State Machine Safety", "No acknowledged write lost"}),
        probes=(lambda: scenarios_membership.learners_cannot_elect(1),),
    ),
]


def _first_failure(m: Mutation) -> tuple[str, SimFailure] | None:
    for i, probe in enumerate(m.probes):
        try:
            probe()
        except SimFailure as err:
            return f"probe {i}", err
    for seed in m.seeds:
        try:
            run_seed(seed)
        except SimFailure as err:
            return f"seed {seed}", err
    return None


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_checkers_catch_broken_core(mutation: Mutation, monkeypatch: pytest.MonkeyPatch) -> None:
    mutation.apply(monkeypatch)
    found = _first_failure(mutation)
    assert found is not None, f"{mutation.name}: no probe and no seed caught this broken core"
    where, err = found
    assert err.prop in mutation.expect, f"{mutation.name} caught at {where}, but as: {err}"
    assert f"RAFTKV_SIM_SEED={err.seed}" in str(err)
    assert "trace tail" in str(err)


def test_persist_check_catches_a_forgotten_vote_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the persist-before-send check on, the same bug fails the first election of any run."""
    vote_not_persisted(monkeypatch)
    with pytest.raises(SimFailure) as info:
        run_seed(0)
    assert info.value.prop == "Persist before send"


def test_figure8_rule_check_catches_old_term_commit_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the implementation rule check on, the same bug is reported at step (c) already."""
    commit_old_term_by_counting(monkeypatch)
    with pytest.raises(SimFailure) as info:
        scenarios.figure8(1)
    assert info.value.prop.startswith("Leader commit rule")


def test_one_change_rule_check_catches_overlapping_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the rule check on, the second uncommitted configuration entry is reported at once."""
    overlapping_changes(monkeypatch)
    with pytest.raises(SimFailure) as info:
        scenarios_membership.one_change_at_a_time(1)
    assert info.value.prop == "One membership change at a time (thesis §4.1)"
