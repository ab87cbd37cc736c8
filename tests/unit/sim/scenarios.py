"""scenarios.py — the classic Raft traps, driven step by step inside the simulation.

Each scenario builds a ``Simulation`` from a seed, steers the network/clock to set the trap, runs
with every checker on, then heals and checks liveness (runner.settle). It returns what the tests
assert on. Mutation tests reuse the same functions against deliberately broken cores.

Nodes are symmetric, so scenario roles ("A", "B", ...) are assigned to whichever node the
cluster happens to elect; the seed fixes the choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from raftkv.raft import AppendEntries, RequestVote, RequestVoteResponse, Role
from tests.unit.sim.cluster import SimNode, SimParams, Simulation
from tests.unit.sim.disk import SimDisk
from tests.unit.sim.network import FaultRates
from tests.unit.sim.runner import settle

__all__ = [
    "Outcome",
    "boot",
    "figure8",
    "flapping_link",
    "old_leader_partitioned",
    "read_on_new_leader",
    "rejoin_does_not_disrupt",
    "single_node",
    "snapshot_catch_up",
    "split_votes",
    "stale_candidates_with_fast_clocks",
    "stale_vote_grants",
    "transfer_to_lagging",
    "vote_forgotten_on_crash",
    "wiped_follower",
]

_CALM = FaultRates(delay_min=1, delay_max=3)


@dataclass
class Outcome:
    sim: Simulation
    facts: dict[str, Any] = field(default_factory=dict)


def boot(seed: int, name: str, *, rule_checks: bool = True, **overrides: Any) -> Simulation:
    """A cluster with a settled leader (calm network unless ``rates`` is overridden)."""
    params = replace(SimParams(rates=_CALM), **overrides)
    sim = Simulation(
        seed, params, replay=f"pytest tests/unit/sim/test_scenarios.py -k {name} (seed {seed})"
    )
    sim.rule_checks = rule_checks
    sim.wait_for(
        lambda: sim.settled_leader() is not None, "a first leader", 20 * params.election_tick
    )
    _wait_applied_everywhere(sim)
    return sim


def _leader(sim: Simulation) -> SimNode:
    node = sim.settled_leader()
    if node is None:
        raise sim.fail("Scenario", "no settled leader")
    return node


def _wait_applied_everywhere(sim: Simulation, timeout_ticks: float = 100) -> None:
    target = max(n.kv.index for n in sim.nodes.values() if n.up)
    sim.wait_for(
        lambda: all(n.kv.index >= target for n in sim.nodes.values() if n.up),
        f"every running node applying up to {target}",
        timeout_ticks,
    )


def _propose_and_ack(sim: Simulation, node: SimNode, count: int, timeout_ticks: float = 50) -> None:
    ops = []
    for _ in range(count):
        op = sim.propose(node)
        if op is None:
            raise sim.fail("Scenario", f"{node.id} refused a proposal")
        ops.append(op)
        sim.run_for(sim.ticks(0.5))
    sim.wait_for(
        lambda: all(op.complete is not None for op in ops),
        f"{count} proposals on {node.id} acknowledged",
        timeout_ticks,
    )


# ---------------------------------------------------------------------------------------------
def figure8(seed: int, *, rule_checks: bool = True) -> Outcome:
    """Raft paper Figure 8: an entry from an older term replicated on a majority is NOT committed
    by counting, because a server with a newer-term entry at that index can still win and
    overwrite it.

    (a) leader A (term T1) replicates X at index i to A2 only; (b) partition; B is elected by
    the other three (term T2), writes its NOOP at i alone, crashes; (c) A or A2 leads again
    (term T3), replicates X (i, T1) to C — now on a majority — but its own NOOP (i+1, T3) to
    nobody outside {A, A2}: X must stay uncommitted; (d) the (c) leader and its partner crash, B
    returns and wins with C and D, and overwrites i with its T2 NOOP.
    """
    et = 10
    sim = boot(seed, "figure8", rule_checks=rule_checks, n=5, max_entries_per_msg=1)
    a = _leader(sim)
    others = sorted(set(sim.ids) - {a.id})
    a2, rest = others[0], others[1:]
    # (a)
    sim.net.partition([a.id, a2], rest)
    op = sim.propose(a, key="k0")
    assert op is not None
    i = a.view.last_index()
    t1 = a.view.term_at(i)
    sim.wait_for(lambda: sim.nodes[a2].view.term_at(i) == t1, "X replicated to A2", 5)
    # (b) the majority side elects B; B's appends never leave it
    no_appends_from_rest = sim.net.add_filter(
        lambda m: isinstance(m, AppendEntries) and m.src in rest
    )

    def b_wrote_noop() -> bool:
        for nid in rest:
            n = sim.nodes[nid]
            if n.raft is not None:
                st = n.raft.status()
                if st.role is Role.LEADER and n.view.term_at(i) == st.term:
                    return True
        return False

    sim.wait_for(b_wrote_noop, "a leader on the majority side with its NOOP at i", 20 * et)
    b = next(
        sim.nodes[nid]
        for nid in rest
        if sim.nodes[nid].raft is not None and sim.nodes[nid].raft.status().role is Role.LEADER  # type: ignore[union-attr]
    )
    t2 = b.view.term_at(i)
    sim.crash(b.id)
    sim.net.remove_filter(no_appends_from_rest)
    c_id, d_id = sorted(set(rest) - {b.id})
    c = sim.nodes[c_id]
    # (c) A or A2 leads again; X reaches C, the new NOOP reaches nobody outside {A, A2}
    sim.heal()

    def c_filter(m: object) -> bool:
        if not isinstance(m, AppendEntries):
            return False
        if m.dst == d_id:
            return True
        return m.dst == c_id and any(e.index > i for e in m.entries) and c.view.term_at(i) == t1

    sim.net.add_filter(c_filter)

    def trap_set() -> bool:
        lead = [n for n in (a, sim.nodes[a2]) if n.raft and n.raft.status().role is Role.LEADER]
        if not lead:
            return False
        t3 = lead[0].raft.status().term  # type: ignore[union-attr]
        partner = sim.nodes[a2] if lead[0] is a else a
        return c.view.term_at(i) == t1 and partner.view.term_at(i + 1) == t3

    sim.wait_for(trap_set, "X on a majority, the new leader's NOOP on a minority", 30 * et)
    lead_c = a if a.raft and a.raft.status().role is Role.LEADER else sim.nodes[a2]
    assert lead_c.raft is not None
    t3 = lead_c.raft.status().term
    sim.run_for(sim.ticks(3 * et))  # plenty of time to (wrongly) commit X by counting
    commit_c = lead_c.raft.status().commit_index if lead_c.raft else -1
    # (d) the (c) leader and its partner crash; B returns and wins with C and D
    sim.crash(a.id)
    sim.crash(a2)
    sim.net.filters.clear()
    sim.restart(b.id)
    sim.wait_for(lambda: sim.leader_among([b.id]) is b, "B elected and committing", 40 * et)
    t4 = sim.term_of(b.id)
    settle(sim)
    return Outcome(
        sim,
        {"i": i, "t1": t1, "t2": t2, "t3": t3, "t4": t4, "x": op, "commit_in_c": commit_c},
    )


def stale_vote_grants(seed: int, *, rule_checks: bool = True) -> Outcome:
    """A vote granted in term t arrives after the candidate moved to term t+1 and must not count
    there: another candidate wins t+1, so counting it would make two leaders in t+1.
    """
    sim = Simulation(
        seed,
        SimParams(n=3, pre_vote=False, check_quorum=False, rates=_CALM),
        replay=f"pytest tests/unit/sim/test_scenarios.py -k stale_vote (seed {seed})",
    )
    sim.rule_checks = rule_checks
    a, b, c = sim.ids
    for node in sim.nodes.values():
        node.frozen = True  # only this scenario decides who campaigns, and when
    held = sim.hold(lambda m: isinstance(m, RequestVoteResponse) and m.src == b and m.dst == a)
    c_to_a = sim.net.add_filter(lambda m: m.src == c and m.dst == a)  # A never hears from C
    sim.campaign(a)  # term 1: B's grant is held, C's is lost
    sim.run_for(10)
    a_silenced = sim.net.add_filter(lambda m: isinstance(m, RequestVote) and m.src == a)
    sim.campaign(a)  # term 2: nobody hears it
    term_a = sim.term_of(a)
    sim.campaign(c)  # C (term 1, voted A) campaigns in term 2 and wins with B

    def c_leads() -> bool:
        node = sim.nodes[c]
        return node.raft is not None and node.raft.status().role is Role.LEADER

    sim.wait_for(c_leads, "C leading term 2", 10)
    term_c = sim.term_of(c)
    sim.unhold(held)  # B's term-1 grant finally reaches A, still a term-2 candidate
    sim.run_for(10)
    sim.net.remove_filter(a_silenced)
    sim.net.remove_filter(c_to_a)
    for node in sim.nodes.values():
        node.frozen = False
    settle(sim)
    return Outcome(sim, {"term_a": term_a, "term_c": term_c})


def vote_forgotten_on_crash(seed: int, *, rule_checks: bool = True) -> Outcome:
    """A vote must survive a crash: B votes for A in term 1, crashes and restarts; when C asks
    for B's vote in the same term 1, B must refuse (it already voted), so C cannot lead term 1.
    """
    sim = Simulation(
        seed,
        SimParams(n=3, pre_vote=False, check_quorum=False, rates=_CALM),
        replay=f"pytest tests/unit/sim/test_scenarios.py -k vote_survives (seed {seed})",
    )
    sim.rule_checks = rule_checks
    a, b, c = sim.ids
    for node in sim.nodes.values():
        node.frozen = True
    sim.net.cut_link(a, c)  # C never hears of A's term 1

    def a_leads() -> bool:
        node = sim.nodes[a]
        return node.raft is not None and node.raft.status().role is Role.LEADER

    sim.campaign(a)  # term 1: B's grant makes A leader
    sim.wait_for(a_leads, "A leading term 1", 5)
    sim.net.cut_link(a, b)  # from now on B hears only C (what A has in flight is lost)
    sim.crash(b)
    sim.restart(b)
    sim.campaign(c)  # C, still in term 0, campaigns in term 1
    sim.run_for(20)
    c_led = 1 in sim.history.leaders and sim.history.leaders[1].node == c
    sim.heal()
    for node in sim.nodes.values():
        node.frozen = False
    settle(sim)
    return Outcome(sim, {"term_c": sim.history.leaders[1].node, "c_led_term_1": c_led})


def stale_candidates_with_fast_clocks(seed: int, *, pre_vote: bool) -> Outcome:
    """Two nodes with stale logs and fast clocks campaign again and again (each time in a higher
    term, when pre-vote is off). They can never win. The up-to-date nodes must still time out and
    win: a vote request they *reject* must not reset their election timer (Raft Figure 2:
    "if election timeout elapses without receiving AppendEntries from the current leader or
    granting vote to candidate: convert to candidate").
    """
    et = 10
    sim = boot(seed, "stale_candidates", n=5, pre_vote=pre_vote, check_quorum=True)
    old = _leader(sim)
    stale = sorted(set(sim.ids) - {old.id})[:2]
    for s in stale:
        sim.net.isolate(s)
    _propose_and_ack(sim, old, 5)
    sim.crash(old.id)
    sim.heal()
    for s in stale:
        sim.nodes[s].tick_period = 2  # a clock running five times too fast
    start = sim.now
    up_to_date = sorted(set(sim.ids) - {old.id, *stale})

    def elected() -> bool:
        return sim.leader_among(up_to_date) is not None

    sim.wait_for(elected, "an up-to-date node elected despite the stale campaigners", 30 * et)
    took = (sim.now - start) / sim.params.tick_ms
    for s in stale:
        sim.nodes[s].tick_period = sim.params.tick_ms
    sim.restart(old.id)
    settle(sim)
    return Outcome(sim, {"took_ticks": took})


def old_leader_partitioned(seed: int, *, check_quorum: bool = True) -> Outcome:
    """A leader cut off with a minority keeps accepting proposals until it notices; none of them
    may ever commit, and no read it started may be served."""
    et = 10
    sim = boot(seed, "old_leader", n=5, check_quorum=check_quorum)
    old = _leader(sim)
    term0 = sim.term_of(old.id)
    friend = sorted(set(sim.ids) - {old.id})[0]
    majority = sorted(set(sim.ids) - {old.id, friend})
    sim.net.partition([old.id, friend], majority)
    cut_at = sim.now
    stale_ops = []
    stale_reads = []
    stepped_down_at = None
    for _ in range(4 * et):
        if old.raft is not None and old.raft.status().role is Role.LEADER:
            op = sim.propose(old)
            if op is not None:
                stale_ops.append(op)
            rid = sim.read(old)
            if rid is not None:
                stale_reads.append(rid)
        elif stepped_down_at is None:
            stepped_down_at = sim.now
        sim.run_for(sim.ticks(1))
    new = sim.leader_among(majority)
    if new is None:
        raise sim.fail("Scenario", "the majority side elected no leader")
    _propose_and_ack(sim, new, 5)
    # the old leader may still believe it leads (without check-quorum it does): reads of the keys
    # just overwritten on the majority side must not be served by it
    for key in sim.keys:
        rid = sim.read(old, key=key)
        if rid is not None:
            stale_reads.append(rid)
    sim.run_for(sim.ticks(2 * et))
    settle(sim)
    return Outcome(
        sim,
        {
            "stale_ops": stale_ops,
            "stale_reads": stale_reads,
            "stepped_down_after": None if stepped_down_at is None else stepped_down_at - cut_at,
            "term0": term0,
            "new_leader": new.id,
        },
    )


def snapshot_catch_up(seed: int, *, crash: bool = True) -> Outcome:
    """A follower down (or cut off) for long catches up through InstallSnapshot: the leader has
    compacted past everything it holds."""
    sim = boot(seed, "catches_up_through_a_snapshot", n=3, snapshot_every=5)
    leader = _leader(sim)
    lagger = sim.nodes[sorted(set(sim.ids) - {leader.id})[0]]
    lag_last = lagger.view.last_index()
    if crash:
        sim.crash(lagger.id)
    else:
        sim.net.isolate(lagger.id)
    _propose_and_ack(sim, leader, 40, timeout_ticks=200)
    compacted_to = leader.view.offset
    if crash:
        sim.restart(lagger.id)
    else:
        sim.heal()
    sim.wait_for(
        lambda: lagger.kv.index >= leader.kv.index, "the lagging follower catching up", 100
    )
    facts = {
        "lag_last": lag_last,
        "compacted_to": compacted_to,
        "snapshots_received": lagger.stats["snapshots_received"],
        "same_state": lagger.kv.digest == leader.kv.digest,
    }
    settle(sim)
    return Outcome(sim, facts)


def wiped_follower(seed: int, *, snapshot_every: int) -> Outcome:
    """A follower loses its whole disk (replaced, wiped) and restarts empty while the leader
    still holds the match index it acknowledged before. The leader must notice, from the
    follower's answer to its next append, that the follower no longer holds those entries, and
    catch it up at once: from the log (``snapshot_every=0``) or from the snapshot it ALREADY
    holds (it used to wait for its next compaction, which may never come).

    Only a few writes follow the wipe, fewer than ``snapshot_every``: the leader takes no new
    snapshot meanwhile.
    """
    sim = boot(seed, "wiped_follower", n=3, snapshot_every=snapshot_every)
    leader = _leader(sim)
    wiped = sim.nodes[sorted(set(sim.ids) - {leader.id})[0]]
    _propose_and_ack(sim, leader, max(12, snapshot_every + 2))
    _wait_applied_everywhere(sim)
    assert leader.raft is not None
    match_before = leader.raft.status().progress[wiped.id]
    compactions_before = leader.stats["compactions"]
    snap_before = leader.view.offset
    sim.crash(wiped.id)
    wiped.disk = SimDisk()  # the machine's disk is replaced: nothing survives
    sim.restart(wiped.id)
    _propose_and_ack(sim, leader, 2)
    sim.wait_for(
        lambda: wiped.kv.index >= leader.kv.index and wiped.view.last_index() >= leader.kv.index,
        "the wiped follower catching up",
        60,
    )
    facts = {
        "match_before": match_before,
        "snapshot_index_before": snap_before,
        "leader_compactions_after_wipe": leader.stats["compactions"] - compactions_before,
        "snapshots_received": wiped.stats["snapshots_received"],
        "same_state": wiped.kv.digest == leader.kv.digest,
        "applied": wiped.kv.index,
        "leader_applied": leader.kv.index,
    }
    settle(sim)
    return Outcome(sim, facts)


def split_votes(seed: int, *, pre_vote: bool) -> Outcome:
    """The leader dies and every follower's timer fires at the same moment: each votes for
    itself, nobody gets a majority; randomized timeouts must still produce a leader soon."""
    et = 10
    sim = boot(seed, "split_vote", n=5, pre_vote=pre_vote)
    old = _leader(sim)
    term0 = sim.term_of(old.id)
    sim.crash(old.id)
    for nid in sim.ids:
        if nid != old.id:
            sim.campaign(nid)  # all at once: no message is delivered in between
    sim.wait_for(
        lambda: sim.leader_among(sim.ids) is not None, "a leader after the split vote", 20 * et
    )
    new = sim.leader_among(sim.ids)
    assert new is not None and new.raft is not None
    split_terms = sorted(
        t
        for t, cands in sim.history.candidates.items()
        if t > term0 and len(cands) >= 2 and t not in sim.history.leaders
    )
    facts = {"term0": term0, "leader_term": new.raft.status().term, "split_terms": split_terms}
    sim.restart(old.id)
    settle(sim)
    return Outcome(sim, facts)


def flapping_link(seed: int, *, period_ticks: float = 15, flips: int = 16) -> Outcome:
    """The link between the leader and one follower goes down and up again and again, each
    outage longer than an election timeout. Pre-vote + the leader lease keep the leader in
    office (no term change) and writes keep committing."""
    sim = boot(seed, "flapping", n=3)
    leader = _leader(sim)
    assert leader.raft is not None
    term0 = leader.raft.status().term
    f = sorted(set(sim.ids) - {leader.id})[0]
    acked_before = len(sim.history.acked)
    for k in range(flips):
        if k % 2 == 0:
            sim.net.cut_link(leader.id, f)
            sim.net.cut_link(f, leader.id)
        else:
            sim.net.restore_link(leader.id, f)
            sim.net.restore_link(f, leader.id)
        end = sim.now + sim.ticks(period_ticks)
        while sim.now < end:
            if leader.raft is not None and leader.raft.status().role is Role.LEADER:
                sim.propose(leader)
            sim.run_for(sim.ticks(2))
    sim.heal()
    _wait_applied_everywhere(sim)
    facts = {
        "term0": term0,
        "terms_after": sorted(t for t in sim.history.leaders if t > term0),
        "acked_during": len(sim.history.acked) - acked_before,
        "still_leader": sim.settled_leader() is leader,
    }
    settle(sim)
    return Outcome(sim, facts)


def rejoin_does_not_disrupt(seed: int, *, mode: str = "isolated") -> Outcome:
    """A follower cut off for 30 election timeouts ("isolated": both ways; "deaf": it can send
    but not receive) rejoins; thanks to pre-vote it never raised its term, so the leader stays."""
    et = 10
    sim = boot(seed, "rejoin", n=5)
    leader = _leader(sim)
    assert leader.raft is not None
    term0 = leader.raft.status().term
    f = sim.nodes[sorted(set(sim.ids) - {leader.id})[0]]
    if mode == "isolated":
        sim.net.isolate(f.id)
    else:
        for other in sim.ids:
            if other != f.id:
                sim.net.cut_link(other, f.id)
    for _ in range(30):
        sim.propose(leader)
        sim.run_for(sim.ticks(et))
    term_f_cut = sim.term_of(f.id)
    sim.heal()
    sim.run_for(sim.ticks(10 * et))
    _wait_applied_everywhere(sim)
    facts = {
        "term0": term0,
        "term_f_while_cut": term_f_cut,
        "leaders_after": sorted(t for t in sim.history.leaders if t > term0),
        "still_leader": sim.settled_leader() is leader,
        "caught_up": f.kv.index >= leader.kv.index,
    }
    settle(sim)
    return Outcome(sim, facts)


def transfer_to_lagging(seed: int, *, snapshot_every: int = 0) -> Outcome:
    """Leadership transfer to a follower that is behind: the leader stops taking proposals,
    brings it up to date, then sends TimeoutNow; the target wins the next term."""
    et = 10
    sim = boot(seed, "transfer", n=3, snapshot_every=snapshot_every)
    leader = _leader(sim)
    assert leader.raft is not None
    term0 = leader.raft.status().term
    target = sim.nodes[sorted(set(sim.ids) - {leader.id})[0]]
    sim.net.cut_link(leader.id, target.id)
    _propose_and_ack(sim, leader, 20)
    behind_by = leader.kv.index - target.kv.index
    sim.net.restore_link(leader.id, target.id)
    chosen = sim.transfer(leader.id, target.id)
    refused = sim.propose(leader) is None  # ProposalDropped while the transfer runs
    start = sim.now
    sim.wait_for(lambda: sim.settled_leader() is target, "the target leading", 10 * et)
    facts = {
        "term0": term0,
        "chosen": chosen,
        "behind_by": behind_by,
        "refused_during_transfer": refused,
        "new_term": sim.term_of(target.id),
        "took_ticks": (sim.now - start) / sim.params.tick_ms,
    }
    settle(sim)
    return Outcome(sim, facts)


def read_on_new_leader(seed: int) -> Outcome:
    """A new leader may not know the latest commit index yet: it must not serve a ReadIndex read
    before it committed an entry of its own term (thesis §6.4), or the read can miss a write
    the previous leader already acknowledged.

    Leader L acknowledges write w at index i; N stores w but never hears that i is committed;
    L hands leadership to N (TimeoutNow); a read of w's key on N, issued the moment N leads,
    must return w.
    """
    et = 10
    sim = boot(seed, "new_leader_reads", n=3)
    old = _leader(sim)
    new = sim.nodes[sorted(set(sim.ids) - {old.id})[0]]
    i = old.view.last_index() + 1

    def hides_commit(m: object) -> bool:
        commit = getattr(m, "commit", None)
        return (
            getattr(m, "src", None) == old.id
            and getattr(m, "dst", None) == new.id
            and (commit is not None and commit >= i)
        )

    sim.net.add_filter(hides_commit)
    op = sim.propose(old, key="k0")
    assert op is not None
    sim.wait_for(lambda: op.complete is not None, "w acknowledged by the old leader", 5 * et)
    new_commit = new.raft.status().commit_index if new.raft else -1
    sim.transfer(old.id, new.id)

    def new_leads() -> bool:
        return new.raft is not None and new.raft.status().role is Role.LEADER

    sim.wait_for(new_leads, "N leading after the transfer", 5 * et)
    commit_at_election = new.raft.status().commit_index if new.raft else -1
    rid = sim.read(new, key="k0")
    sim.run_for(sim.ticks(3 * et))
    served = [r for r in sim.history.reads if r.request_id == rid]
    sim.net.filters.clear()
    facts = {
        "i": i,
        "w": op.value,
        "new_commit_before": new_commit,
        "commit_at_election": commit_at_election,
        "read": served[0].value if served else None,
    }
    settle(sim)
    return Outcome(sim, facts)


def single_node(seed: int) -> Outcome:
    """A one-node cluster elects itself, commits alone, serves reads, compacts, and recovers."""
    sim = Simulation(
        seed,
        SimParams(n=1, snapshot_every=5, rates=_CALM),
        replay=f"pytest tests/unit/sim/test_scenarios.py -k single (seed {seed})",
    )
    et = sim.params.election_tick
    sim.wait_for(lambda: sim.settled_leader() is not None, "the single node leading", 2 * et + 1)
    elected_at = sim.now
    node = sim.nodes[sim.ids[0]]
    _propose_and_ack(sim, node, 12)
    rid = sim.read(node, key="k0")
    sim.run_for(sim.ticks(1))
    served = [r for r in sim.history.reads if r.request_id == rid]
    state_before = dict(node.kv.kv)
    sim.crash(node.id)
    sim.restart(node.id)
    sim.wait_for(lambda: sim.settled_leader() is node, "the node leading again", 2 * et + 1)
    facts = {
        "elected_at": elected_at,
        "read": served[0].value if served else "<not served>",
        "expected_read": state_before.get("k0"),
        "compactions": node.stats["compactions"],
        "recovered": dict(node.kv.kv) == state_before,
    }
    _propose_and_ack(sim, node, 3)
    settle(sim)
    return Outcome(sim, facts)
