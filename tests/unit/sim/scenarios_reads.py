"""scenarios_reads.py — reads served by FOLLOWERS through ReadIndex (thesis §6.4), under leader
change. A follower asks its leader for a read index (ReadIndex), the leader answers once a quorum
confirmed its leadership (ReadIndexResponse), the follower serves once it applied that index.

Every run has all the simulation's checkers on, the linearizability checker included: a stale
read anywhere fails the scenario with its seed.
"""

from __future__ import annotations

from raftkv.raft import AppendEntries, Heartbeat, Role
from tests.unit.sim.cluster import Simulation
from tests.unit.sim.linearizability import ReadOp
from tests.unit.sim.runner import settle
from tests.unit.sim.scenarios import Outcome, _leader, boot

__all__ = ["follower_reads_under_leader_change"]


def _served(sim: Simulation, rid: str | None) -> list[ReadOp]:
    return [r for r in sim.history.reads if r.request_id == rid]


def follower_reads_under_leader_change(seed: int) -> Outcome:
    """Five nodes. (1) The leader L1 and a follower F are cut off from the other three, which
    elect L2 and overwrite key k0. F still follows L1 (no check-quorum: L1 never steps down) and
    asks L1 for read indexes: L1 cannot confirm its leadership, so none of F's reads of k0 may be
    served (serving L1's commit index would return the overwritten value). (2) Healed, F follows
    L2. L2's appends to F are held while L2 acknowledges a new write of k0 and F reads k0: F gets
    a read index above what it applied and must wait for the entries before it answers; it
    returns the new value. (3) Reads on every follower while the leader keeps changing hands.
    """
    et = 10
    sim = boot(seed, "follower_reads", n=5, check_quorum=False)
    l1 = _leader(sim)
    f = sim.nodes[sorted(set(sim.ids) - {l1.id})[0]]
    majority = sorted(set(sim.ids) - {l1.id, f.id})
    op0 = sim.propose(l1, key="k0")
    assert op0 is not None
    sim.wait_for(lambda: op0.complete is not None, "w0 acknowledged", 5 * et)
    # a follower read in calm weather: served by F itself, at F
    rid = sim.read(f, key="k0")
    sim.wait_for(lambda: bool(_served(sim, rid)), "a follower read served", 5 * et)
    calm = _served(sim, rid)[0]
    calm_node = f.id

    # (1) partition: {L1, F} | majority
    sim.net.partition([l1.id, f.id], majority)
    sim.wait_for(
        lambda: sim.leader_among(majority) is not None, "a leader on the majority side", 20 * et
    )
    l2 = sim.leader_among(majority)
    assert l2 is not None
    op1 = sim.propose(l2, key="k0")
    assert op1 is not None
    sim.wait_for(lambda: op1.complete is not None, "w1 acknowledged on the majority side", 5 * et)
    asked_l1 = sim.counters["recv ReadIndex"]
    cut_reads = []
    for _ in range(2 * et):
        if f.raft is not None and f.raft.status().leader == l1.id:
            r = sim.read(f, key="k0")
            if r is not None:
                cut_reads.append(r)
        sim.run_for(sim.ticks(1))
    l1_still_leads = l1.raft is not None and l1.raft.status().role is Role.LEADER
    served_cut = [op for r in cut_reads for op in _served(sim, r)]

    # (2) heal; F follows L2; hold L2's appends and heartbeats to F while w2 commits and F reads
    sim.heal()
    sim.wait_for(lambda: sim.settled_leader() is not None, "one leader after the heal", 30 * et)
    l2 = _leader(sim)
    if l2.id == f.id:  # F won: read on another follower instead
        f = sim.nodes[sorted(set(sim.ids) - {l2.id})[0]]
    sim.wait_for(lambda: f.kv.index >= l2.kv.index, "F caught up", 10 * et)
    held = sim.hold(
        lambda m: isinstance(m, AppendEntries | Heartbeat) and m.src == l2.id and m.dst == f.id
    )
    op2 = sim.propose(l2, key="k0")
    assert op2 is not None
    sim.wait_for(lambda: op2.complete is not None, "w2 acknowledged without F", 5 * et)
    applied_at_read = f.kv.index
    rid2 = sim.read(f, key="k0")
    answered = [False]

    def got_answer() -> bool:
        answered[0] = answered[0] or (f.raft is not None and rid2 not in f.reads)
        return answered[0]

    sim.wait_for(got_answer, "L2's read index reaching F", 3)
    waited = not _served(sim, rid2)  # the index is known, the entries are not: F waits
    sim.unhold(held)
    sim.wait_for(lambda: bool(_served(sim, rid2)), "F serving after applying", 5 * et)
    lagging = _served(sim, rid2)[0]

    # (3) reads on every follower while leadership moves around
    moves = 0
    follower_served = 0
    for _ in range(6):
        leader = sim.settled_leader()
        if leader is None:
            sim.run_for(sim.ticks(et))
            continue
        rids = [sim.read(n) for n in sim.up_nodes() if n is not leader]
        sim.propose(leader)
        target = sorted(set(sim.ids) - {leader.id})[moves % 4]
        sim.transfer(leader.id, target)
        moves += 1
        sim.run_for(sim.ticks(2 * et))
        follower_served += sum(1 for r in rids if r is not None and _served(sim, r))
    settle(sim)
    return Outcome(
        sim,
        {
            "calm": calm,
            "calm_node": calm_node,
            "w0": op0.value,
            "w1": op1.value,
            "w2": op2.value,
            "f": f.id,
            "asked_l1": sim.counters["recv ReadIndex"] - asked_l1,
            "cut_reads": cut_reads,
            "served_cut": served_cut,
            "l1_still_leads": l1_still_leads,
            "applied_at_read": applied_at_read,
            "waited": waited,
            "lagging": lagging,
            "follower_served": follower_served,
            "moves": moves,
            "responses": sim.counters["recv ReadIndexResponse"],
        },
    )
