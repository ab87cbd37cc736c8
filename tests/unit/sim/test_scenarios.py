"""Named scenarios: the classic Raft traps, each set up deliberately inside the simulation.

Every scenario runs with all the safety checkers on (any violation fails it with the seed and a
trace tail), then heals the cluster and checks liveness. The assertions here check that the trap
was really set and that the protocol behaved as the paper / thesis says.
"""

from __future__ import annotations

import pytest

from tests.unit.sim import scenarios

SEEDS = (1, 2, 3)


@pytest.mark.parametrize("seed", SEEDS)
def test_figure8_old_term_entry_is_not_committed_by_counting(seed: int) -> None:
    out = scenarios.figure8(seed)
    f = out.facts
    i = f["i"]
    assert f["t1"] < f["t2"] < f["t3"] < f["t4"], f
    # (c): X (term t1) sat on a majority while the leader of t3 ran; it was NOT committed
    assert f["commit_in_c"] < i, f
    # (d): B's entry of term t2 replaced it, and that is what every replica applied at i
    assert out.sim.history.committed[i].term == f["t2"]
    assert f["x"].complete is None and f["x"].index is None


def test_stale_vote_grant_is_not_counted_in_a_later_term() -> None:
    out = scenarios.stale_vote_grants(1)
    assert out.facts["term_a"] == out.facts["term_c"] == 2
    assert out.sim.history.leaders[2].node == "raft-2"


def test_vote_survives_a_crash() -> None:
    out = scenarios.vote_forgotten_on_crash(1)
    assert not out.facts["c_led_term_1"]
    assert out.sim.history.leaders[1].node == "raft-0"


@pytest.mark.parametrize("check_quorum", [True, False], ids=["check_quorum", "no_check_quorum"])
@pytest.mark.parametrize("seed", SEEDS)
def test_old_leader_behind_partition_never_commits(seed: int, check_quorum: bool) -> None:
    out = scenarios.old_leader_partitioned(seed, check_quorum=check_quorum)
    f = out.facts
    hist = out.sim.history
    assert f["stale_ops"], "the old leader took no proposals: the trap was not set"
    for op in f["stale_ops"]:
        assert op.index is None, f"{op.value} from the cut-off leader was committed at {op.index}"
        assert op.complete is None
    served = {r.request_id for r in hist.reads}
    assert not served & set(f["stale_reads"]), "the cut-off leader served a read"
    if check_quorum:
        # it noticed it lost its quorum within an election timeout or two (thesis §6.2)
        assert f["stepped_down_after"] is not None
        assert f["stepped_down_after"] <= out.sim.ticks(2 * out.sim.params.election_tick)
    else:
        assert f["stepped_down_after"] is None  # it keeps believing; safety holds regardless


@pytest.mark.parametrize("crash", [True, False], ids=["down", "cut_off"])
@pytest.mark.parametrize("seed", SEEDS)
def test_long_down_follower_catches_up_through_a_snapshot(seed: int, crash: bool) -> None:
    f = scenarios.snapshot_catch_up(seed, crash=crash).facts
    assert f["compacted_to"] > f["lag_last"], f  # the leader no longer has what it needs
    assert f["snapshots_received"] >= 1, f
    assert f["same_state"], f


@pytest.mark.parametrize("snapshot_every", [0, 8], ids=["log", "snapshot"])
@pytest.mark.parametrize("seed", SEEDS)
def test_wiped_follower_catches_up_without_a_new_snapshot(seed: int, snapshot_every: int) -> None:
    f = scenarios.wiped_follower(seed, snapshot_every=snapshot_every).facts
    assert f["match_before"] > 0, f  # the leader had an acknowledged match for it
    assert f["same_state"] and f["applied"] >= f["leader_applied"], f
    if snapshot_every:
        assert f["snapshot_index_before"] > 0, f  # the log before it was compacted away
        assert f["leader_compactions_after_wipe"] == 0, f  # no new snapshot was taken...
        assert f["snapshots_received"] == 1, f  # ...the one the leader held was sent
    else:
        assert f["snapshot_index_before"] == 0 and f["snapshots_received"] == 0, f


@pytest.mark.parametrize("pre_vote", [False, True], ids=["vote", "pre_vote"])
@pytest.mark.parametrize("seed", SEEDS)
def test_split_vote_then_a_leader(seed: int, pre_vote: bool) -> None:
    f = scenarios.split_votes(seed, pre_vote=pre_vote).facts
    assert f["split_terms"], f"no split vote happened: {f}"
    assert f["leader_term"] > f["split_terms"][0], f


# pre_vote=False is the regression test of core-bugs #2 (a rejected vote request used to reset
# the election timer: the stale campaigners livelocked the election).
@pytest.mark.parametrize("pre_vote", [False, True], ids=["vote", "pre_vote"])
@pytest.mark.parametrize("seed", SEEDS)
def test_stale_candidates_do_not_livelock_the_election(seed: int, pre_vote: bool) -> None:
    f = scenarios.stale_candidates_with_fast_clocks(seed, pre_vote=pre_vote).facts
    assert f["took_ticks"] <= 30 * 10, f


@pytest.mark.parametrize("seed", SEEDS)
def test_flapping_link_does_not_depose_the_leader(seed: int) -> None:
    f = scenarios.flapping_link(seed).facts
    assert f["terms_after"] == [], f"elections while the link flapped: {f}"
    assert f["still_leader"], f
    assert f["acked_during"] >= 20, f


@pytest.mark.parametrize("mode", ["isolated", "deaf"])
@pytest.mark.parametrize("seed", SEEDS)
def test_rejoining_node_does_not_depose_the_leader(seed: int, mode: str) -> None:
    f = scenarios.rejoin_does_not_disrupt(seed, mode=mode).facts
    assert f["term_f_while_cut"] == f["term0"], f"pre-vote let the cut-off node raise its term: {f}"
    assert f["leaders_after"] == [], f
    assert f["still_leader"], f
    assert f["caught_up"], f


@pytest.mark.parametrize("snapshot_every", [0, 4], ids=["log", "snapshot"])
@pytest.mark.parametrize("seed", SEEDS)
def test_leadership_transfer_to_a_lagging_follower(seed: int, snapshot_every: int) -> None:
    f = scenarios.transfer_to_lagging(seed, snapshot_every=snapshot_every).facts
    assert f["behind_by"] >= 20, f
    assert f["refused_during_transfer"], f
    assert f["new_term"] == f["term0"] + 1, f
    assert f["took_ticks"] <= 10, f


@pytest.mark.parametrize("seed", SEEDS)
def test_new_leader_reads_only_after_committing_in_its_term(seed: int) -> None:
    f = scenarios.read_on_new_leader(seed).facts
    assert f["new_commit_before"] < f["i"] and f["commit_at_election"] < f["i"], f  # trap set
    assert f["read"] == f["w"], f


@pytest.mark.parametrize("seed", SEEDS)
def test_single_node_cluster(seed: int) -> None:
    out = scenarios.single_node(seed)
    f = out.facts
    assert f["read"] == f["expected_read"] is not None, f
    assert f["compactions"] >= 1, f
    assert f["recovered"], f
