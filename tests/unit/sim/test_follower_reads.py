"""Follower reads through ReadIndex (thesis §6.4) in the simulation: linearizable under leader
change, and the checkers catch a leader that answers a follower's read without confirming its
leadership (a mutation)."""

from __future__ import annotations

import pytest

from raftkv.raft import RaftNode, ReadIndex
from tests.unit.sim.cluster import SimFailure
from tests.unit.sim.runner import run_seed
from tests.unit.sim.scenarios_reads import follower_reads_under_leader_change

SEEDS = (1, 2, 3, 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_follower_reads_are_linearizable_under_leader_change(seed: int) -> None:
    f = follower_reads_under_leader_change(seed).facts
    assert f["calm"].node == f["calm_node"] and f["calm"].value == f["w0"], f
    # (1) the cut-off leader was asked and could not confirm: nothing served from the old state
    assert f["l1_still_leads"] and f["cut_reads"] and f["asked_l1"] > 0, f
    assert f["served_cut"] == [], f
    # (2) F learned the read index before the entries, waited, and returned the new value
    assert f["waited"], f
    assert f["lagging"].read_index > f["applied_at_read"], f
    assert f["lagging"].value == f["w2"] and f["lagging"].node == f["f"], f
    # (3) followers served reads while leadership moved
    assert f["moves"] >= 3 and f["follower_served"] > 0, f


def _answers_without_confirming(mp: pytest.MonkeyPatch) -> None:
    """The mutation: a leader answers a follower's read with its commit index at once."""
    if not hasattr(RaftNode, "_release_reads"):
        pytest.fail("core internals changed (no RaftNode._release_reads): update this mutation")

    def handle(self: RaftNode, m: ReadIndex) -> None:
        rid = f"mut-{m.src}-{m.request_id}"
        self._remote_reads[rid] = (m.src, m.request_id)
        self._release_reads([rid], self.commit)

    mp.setattr(RaftNode, "_handle_read_index", handle)


def test_mutation_unconfirmed_follower_read_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    _answers_without_confirming(monkeypatch)
    with pytest.raises(SimFailure) as ei:
        for seed in SEEDS:
            follower_reads_under_leader_change(seed)
    assert "inearizab" in str(ei.value) or "stale read" in str(ei.value), str(ei.value)[:2000]


def test_random_runs_with_follower_reads() -> None:
    """The random fault schedule sends some client reads to followers: they now go through
    ReadIndex and the linearizability checker sees them."""
    asked = answered = 0
    for seed in range(200, 206):
        counters = run_seed(seed).counters
        asked += counters.get("recv ReadIndex", 0)
        answered += counters.get("recv ReadIndexResponse", 0)
    assert asked > 0 and answered > 0, (asked, answered)
