"""The harness's own parts: simulated disk, network, checkers, determinism and replay."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from raftkv.raft import Entry, HardState, Heartbeat, Snapshot, SnapshotMeta
from tests.unit.sim.checkers import History, Violation
from tests.unit.sim.cluster import SimFailure, Simulation
from tests.unit.sim.disk import SimDisk
from tests.unit.sim.kvmodel import KVState, chain_digest, encode_put
from tests.unit.sim.network import FaultRates, SimNetwork
from tests.unit.sim.runner import FaultSchedule, run_seed


def ents(*pairs: tuple[int, int]) -> tuple[Entry, ...]:
    return tuple(Entry(index=i, term=t, data=put("k", f"v{i}")) for i, t in pairs)


def put(key: str, value: str, client: str = "c0", seq: int | None = None) -> bytes:
    return encode_put(key, value, client, seq if seq is not None else sum(map(ord, value)))


# -- disk ------------------------------------------------------------------------------------
def test_disk_sync_makes_writes_durable() -> None:
    d = SimDisk()
    d.write(HardState(term=1, voted_for="a", commit=1), ents((1, 1), (2, 1)))
    d.sync()
    d.crash(random.Random(0))
    img = d.recover()
    assert [e.index for e in img.entries] == [1, 2]
    assert img.hard_state.voted_for == "a"


def test_disk_crash_keeps_only_a_prefix_of_unsynced_writes() -> None:
    kept = set()
    for seed in range(40):
        d = SimDisk()
        d.write(None, ents((1, 1)))
        d.write(None, ents((2, 1)))
        d.write(None, ents((3, 1)))
        d.crash(random.Random(seed))
        got = [e.index for e in d.recover().entries]
        assert got == list(range(1, len(got) + 1))  # always a prefix
        kept.add(len(got))
    assert kept == {0, 1, 2, 3}


def test_disk_batch_is_atomic() -> None:
    for seed in range(20):
        d = SimDisk()
        d.write(HardState(term=2, voted_for="a"), ents((1, 2)))
        d.crash(random.Random(seed))
        img = d.recover()
        assert (img.hard_state.term, len(img.entries)) in {(0, 0), (2, 1)}


def test_disk_append_replaces_the_suffix() -> None:
    d = SimDisk()
    d.write(None, ents((1, 1), (2, 1), (3, 1)))
    d.write(None, ents((2, 2)))
    d.sync()
    assert [(e.index, e.term) for e in d.recover().entries] == [(1, 1), (2, 2)]


def test_disk_snapshot_received_vs_taken() -> None:
    snap = Snapshot(meta=SnapshotMeta(index=2, term=1), data=KVState().serialize())
    d = SimDisk()
    d.write(None, ents((1, 1), (2, 1), (3, 1)))
    d.save_snapshot(snap, received=False)  # compaction keeps what follows
    assert [e.index for e in d.recover().entries] == [3]
    d.save_snapshot(snap, received=True)  # from the leader: the log restarts after it
    assert d.recover().entries == []
    assert d.recover().offset == 2


# -- network ---------------------------------------------------------------------------------
def hb(src: str, dst: str) -> Heartbeat:
    return Heartbeat(src=src, dst=dst, term=1)


def test_kv_model_applies_a_retried_write_once_like_the_real_state_machine() -> None:
    kv = KVState()
    a1 = Entry(index=1, term=1, data=put("k", "a", seq=1))
    b = Entry(index=2, term=1, data=put("k", "b", client="c1", seq=1))
    a2 = Entry(index=3, term=2, data=put("k", "a", seq=1))  # the retry of a
    assert kv.apply(a1) is None and kv.apply(b) is None
    assert kv.apply(a2) == 1  # a duplicate of the write applied at index 1
    assert kv.kv == {"k": "b"} and kv.shadow.get("k") == ("b", 2)
    again = KVState.deserialize(kv.serialize())
    assert again.kv == kv.kv and again.digest == kv.digest
    assert again.shadow.snapshot() == kv.shadow.snapshot()


def test_network_cuts_are_directed() -> None:
    net = SimNetwork(random.Random(0), ["a", "b", "c"], FaultRates())
    net.cut_link("a", "b")
    assert net.plan(hb("a", "b")) == []
    assert net.plan(hb("b", "a")) != []
    net.partition(["a"], ["b", "c"])
    assert net.plan(hb("c", "a")) == [] and net.plan(hb("b", "c")) != []
    net.heal()
    assert net.plan(hb("a", "b")) != []


def test_network_faults_follow_the_rates() -> None:
    net = SimNetwork(random.Random(1), ["a", "b"], FaultRates(drop=1.0))
    assert all(net.plan(hb("a", "b")) == [] for _ in range(20))
    net = SimNetwork(random.Random(1), ["a", "b"], FaultRates(duplicate=1.0, delay_max=9))
    plans = [net.plan(hb("a", "b")) for _ in range(20)]
    assert all(len(p) == 2 for p in plans)
    assert len({d for p in plans for d in p}) > 3  # delays vary: messages reorder


# -- checkers --------------------------------------------------------------------------------
def test_election_safety_checker() -> None:
    h = History()
    h.leader_seen("a", 3, 0, 0, [], now=1)
    h.leader_seen("a", 3, 0, 0, [], now=2)
    with pytest.raises(Violation, match="two leaders in term 3"):
        h.leader_seen("b", 3, 0, 0, [], now=3)


def test_log_matching_checker() -> None:
    h = History()
    e = ents((1, 1), (2, 2))
    h.entry_written("a", e[0], 0)
    h.entry_written("a", e[1], 1)
    h.entry_written("b", e[1], 1)
    with pytest.raises(Violation, match="Log Matching"):
        h.entry_written("c", Entry(index=2, term=2, data=put("k", "other")), 1)
    with pytest.raises(Violation, match="logs differ"):
        h.entry_written("c", e[1], 0)


def test_state_machine_safety_checker() -> None:
    h = History()
    e1 = Entry(index=1, term=1, data=put("k", "a", seq=1))
    e1b = Entry(index=1, term=2, data=put("k", "b", seq=2))
    h.applied("a", 1, e1, chain_digest(KVState().digest, e1))
    with pytest.raises(Violation, match="State Machine Safety"):
        h.applied("b", 2, e1b, chain_digest(KVState().digest, e1b))


def test_leader_completeness_checker() -> None:
    h = History()
    e1 = Entry(index=1, term=1, data=put("k", "a", seq=1))
    h.applied("a", 1, e1, chain_digest(KVState().digest, e1))
    h.leader_seen("b", 1, 0, 0, [], now=1)  # same term as the commit: not constrained
    with pytest.raises(Violation, match="Leader Completeness"):
        h.leader_seen("c", 2, 0, 0, [], now=2)  # a later leader without entry 1


# -- the whole simulation ------------------------------------------------------------------
def test_same_seed_same_run() -> None:
    t1: list[str] = []
    t2: list[str] = []
    r1 = run_seed(7, chaos_ticks=60, trace=t1)
    r2 = run_seed(7, chaos_ticks=60, trace=t2)
    assert r1 == r2
    assert t1 == t2 and len(t1) > 100


_TRACE_DIGEST = """
import hashlib, logging
logging.disable(logging.CRITICAL)
from tests.unit.sim.runner import run_seed
t = []
run_seed(11, chaos_ticks=60, trace=t)
print(hashlib.sha256("\\n".join(t).encode()).hexdigest())
"""


def test_replay_is_exact_across_processes() -> None:
    """A seed found by the soak must replay in another process: no hash-order dependence."""
    root = Path(__file__).resolve().parents[3]
    digests = set()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", _TRACE_DIGEST],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1, digests


def test_random_runs_exercise_every_fault_and_feature() -> None:
    """Guard against the harness silently losing coverage (a fault that never fires, snapshots
    that never ship...): 25 seeds together must exercise all of it."""
    total: Counter[str] = Counter()
    for seed in range(1000, 1025):
        total.update(run_seed(seed).counters)
    wanted = [f"fault {a}" for a in FaultSchedule.ACTIONS] + [
        "crash",
        "crash-in-ready",
        "unsynced writes lost",
        "compaction",
        "snapshot installed",
        "recv InstallSnapshot",
        "recv TimeoutNow",
        "recv RequestVote",
        "leader elected",
        "write acked",
        "read served",
        "messages dropped",
        "messages duplicated",
        "write retried",
    ]
    missing = [w for w in wanted if total[w] == 0]
    assert not missing, f"never happened in 25 runs: {missing} (counters: {dict(total)})"


def test_different_seeds_differ() -> None:
    t1: list[str] = []
    t2: list[str] = []
    run_seed(8, chaos_ticks=60, trace=t1)
    run_seed(9, chaos_ticks=60, trace=t2)
    assert t1 != t2


def test_failure_names_the_seed_and_shows_the_trace() -> None:
    sim = Simulation(42)
    sim.run_for(sim.ticks(30))
    err = sim.fail("Example", "something broke")
    text = str(err)
    assert isinstance(err, SimFailure)
    assert text.startswith("RAFTKV_SIM_SEED=42 violated Example: something broke")
    assert "trace tail" in text and "t=" in text


def test_soak_runs_seeds_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.sim import soak

    assert soak.main(["--start", "5", "--count", "2", "--every", "0"]) == 0
    out = capsys.readouterr().out
    assert "seeds from 5" in out and "soak: 2 seeds in" in out and "0 failed" in out


def test_soak_prints_the_failing_seed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.sim import soak

    def broken(seed: int) -> None:
        raise SimFailure(seed, "Example", "broken on purpose", ["t=1 ..."], "replay")

    monkeypatch.setattr(soak, "run_seed", broken)
    assert soak.main(["--start", "7", "--count", "3"]) == 1
    out = capsys.readouterr().out
    assert "RAFTKV_SIM_SEED=7 violated Example" in out
    assert "RAFTKV_SIM_SEED=7 pytest tests/unit/sim -k replay" in out
    assert "1 failed [7]" in out  # stops at the first failure without --keep-going
