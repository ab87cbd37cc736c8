"""Randomized runs over a fixed set of seeds (CI), plus exact replay of one seed.

Each seed is one full run of runner.run_seed: chaos (crashes, partitions, loss, duplication,
reordering, pauses, transfers) under a client workload, then heal + liveness + the final checks.
A failure prints ``RAFTKV_SIM_SEED=<n>``; ``RAFTKV_SIM_SEED=<n> pytest tests/unit/sim -k replay``
replays it exactly (add ``RAFTKV_SIM_TRACE=/tmp/trace.txt`` for the full event trace).
"""

from __future__ import annotations

import os

import pytest

from tests.unit.sim.runner import run_seed

# Seeds known to fail because of an open core bug (each with a comment naming the bug) are left
# out of the CI range until fixed; keep this set empty otherwise.
KNOWN_BAD: frozenset[int] = frozenset()
CI_SEEDS = [s for s in range(int(os.environ.get("RAFTKV_SIM_SEEDS", "180"))) if s not in KNOWN_BAD]


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seed(seed: int) -> None:
    report = run_seed(seed)
    # the run did real work (a run that elected nobody or served nothing proves nothing)
    assert report.elections >= 1, report.summary()
    assert report.acked >= 3, report.summary()


def test_replay() -> None:
    """``RAFTKV_SIM_SEED=<n> pytest tests/unit/sim -k replay`` runs exactly that seed."""
    raw = os.environ.get("RAFTKV_SIM_SEED")
    if raw is None:
        pytest.skip("set RAFTKV_SIM_SEED=<n> to replay one seed")
    report = run_seed(int(raw))
    print(report.summary())
