"""Membership changes in the simulation (thesis §4): learners, one change at a time, removing the
leader, replacing a lost machine with a new id. Every checker is on; each scenario heals and
checks liveness at the end."""

from __future__ import annotations

import pytest

from raftkv.raft import Role
from tests.unit.sim import scenarios_membership as sm

SEEDS = (1, 2, 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_learners_never_help_elect_a_leader(seed: int) -> None:
    f = sm.learners_cannot_elect(seed).facts
    assert not f["c_led"] and f["a_still_leads"] and f["a_term_unchanged"], f


@pytest.mark.parametrize("seed", SEEDS)
def test_a_second_change_is_refused_while_one_is_in_flight(seed: int) -> None:
    out = sm.one_change_at_a_time(seed)
    assert out.facts["second_refused"], out.facts


@pytest.mark.parametrize("seed", SEEDS)
def test_remove_the_leader_then_replace_a_lost_voter_with_a_new_id(seed: int) -> None:
    f = sm.remove_leader_and_replace(seed).facts
    assert f["old_leader_role"] is Role.FOLLOWER, f
    assert f["old_leader"] not in f["voters"] and f["lost"] not in f["voters"], f
    assert f["fresh"] in f["voters"] and len(f["voters"]) == 4, f
    assert f["old_leader"] in f["old_leader_config"].removed, f  # it knows it was removed
    assert f["term_unchanged"] and f["still_leader"], f


@pytest.mark.parametrize("pre_vote", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_removed_node_that_missed_its_removal_cannot_disrupt(seed: int, pre_vote: bool) -> None:
    f = sm.removed_node_cannot_disrupt(seed, pre_vote=pre_vote).facts
    assert f["same_leader"] and f["term_after"] == f["term"] and not f["victim_led"], f
    if not pre_vote:
        assert f["victim_term_while_cut_off"] > f["term"], f  # it did campaign, in vain
