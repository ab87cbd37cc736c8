"""scenarios_membership.py — membership-change traps (thesis §4), driven inside the simulation.

Like scenarios.py: each builds a cluster from a seed, sets its trap with every checker on, then
heals and checks liveness (runner.settle). The mutation tests run the same functions against
deliberately broken cores (a learner's vote counted, two changes in flight at once).
"""

from __future__ import annotations

from raftkv.raft import (
    AppendEntries,
    ChangeOp,
    ConfChange,
    Heartbeat,
    InstallSnapshot,
    Role,
)
from tests.unit.sim.cluster import SimNode, Simulation
from tests.unit.sim.runner import settle
from tests.unit.sim.scenarios import Outcome, _leader, _propose_and_ack, boot

__all__ = [
    "add_learners",
    "change_before_own_term_commit",
    "learners_cannot_elect",
    "one_change_at_a_time",
    "remove_leader_and_replace",
    "removed_node_cannot_disrupt",
]


def change(sim: Simulation, leader: SimNode, c: ConfChange, *, wait: bool = True) -> int:
    """Propose ``c`` on ``leader``; with ``wait``, until every live member applied it."""
    assert leader.raft is not None
    index = sim.guard(leader.raft.propose_conf_change, c)
    sim.guard(leader.drive)
    if wait:
        sim.wait_for(
            lambda: all(
                sim.nodes[m].kv.index >= index
                for m in sim.members_of(leader.raft.membership if leader.raft else None)
            ),
            f"{c.describe()} applied by every member",
            80,
        )
    return index


def add_learners(sim: Simulation, leader: SimNode, count: int) -> list[str]:
    """Start ``count`` fresh nodes (new ids, empty disks) and add them as learners."""
    added = []
    for _ in range(count):
        assert leader.raft is not None
        nid = f"raft-{sim._next_id}"
        c = ConfChange(op=ChangeOp.ADD_LEARNER, node_id=nid, url=f"sim://{nid}")
        index = sim.guard(leader.raft.propose_conf_change, c)
        sim.guard(sim.add_node, leader.raft.membership.voters)
        sim.guard(leader.drive)
        sim.wait_for(
            lambda index=index: all(  # type: ignore[misc]
                sim.nodes[m].kv.index >= index
                for m in sim.members_of(leader.raft.membership)  # type: ignore[union-attr]
            ),
            f"learner {nid} added and caught up",
            80,
        )
        added.append(nid)
    return added


def learners_cannot_elect(seed: int) -> Outcome:
    """Learners never vote (thesis §4.2.1). 3 voters A, B, C and 2 learners D, E; the leader A
    commits writes with B while C, D, E are cut off. C then campaigns: its only possible votes
    are D's and E's, whose logs are as stale as its own. Counted, they would make C a leader
    without A's committed writes (Leader Completeness); not counted, C never wins."""
    sim = boot(seed, "learners_cannot_elect", n=3)
    a = _leader(sim)
    d, e = add_learners(sim, a, 2)
    c = sorted(set(sim.members_of(a.raft.membership if a.raft else None)) - {a.id, d, e})
    b_id, c_id = c[0], c[1]
    sim.net.partition([a.id, b_id], [c_id, d, e])
    _propose_and_ack(sim, a, 3)
    term = a.raft.status().term if a.raft else 0
    for _ in range(3):  # C's timer fires again and again
        sim.campaign(c_id)
        sim.run_for(sim.ticks(3 * sim.params.election_tick))
    c_node = sim.nodes[c_id]
    facts = {
        "c_led": any(rec.node == c_id for rec in sim.history.leaders.values()),
        "a_still_leads": a.raft is not None and a.raft.status().role is Role.LEADER,
        "a_term_unchanged": a.raft is not None and a.raft.status().term == term,
        "c_role": c_node.raft.status().role if c_node.raft else None,
    }
    sim.heal()
    settle(sim)
    return Outcome(sim, facts)


def one_change_at_a_time(seed: int, *, rule_checks: bool = True) -> Outcome:
    """Thesis §4.1: one change at a time. Voters A, B, C, learners D, E; A is cut off with D and
    E. A proposes "promote D": it cannot commit (3 of 4 voters needed). A second change,
    "promote E", must be refused: if it were appended too, A, D and E would be a majority of the
    resulting 5 voters and commit writes that B and C (a majority of the old 3 voters) never see,
    and B would then be elected without them (Leader Completeness)."""
    sim = boot(seed, "one_change_at_a_time", rule_checks=rule_checks, n=3)
    a = _leader(sim)
    d, e = add_learners(sim, a, 2)
    assert a.raft is not None
    b_id, c_id = sorted(set(a.raft.membership.voters) - {a.id})
    sim.net.partition([a.id, d, e], [b_id, c_id])
    change(sim, a, ConfChange(op=ChangeOp.PROMOTE, node_id=d), wait=False)
    refused = False
    try:
        change(sim, a, ConfChange(op=ChangeOp.PROMOTE, node_id=e), wait=False)
    except Exception as err:  # ConfChangeRefused, wrapped by guard
        refused = "in-flight" in str(err) or "not committed" in str(err)
    for _ in range(3):
        if a.raft is not None and a.raft.status().role is Role.LEADER:
            sim.propose(a)
        sim.run_for(sim.ticks(2))
    sim.run_for(sim.ticks(2 * sim.params.election_tick))
    sim.campaign(b_id)
    sim.run_for(sim.ticks(4 * sim.params.election_tick))
    facts = {"second_refused": refused}
    sim.heal()
    settle(sim)
    return Outcome(sim, facts)


def remove_leader_and_replace(seed: int) -> Outcome:
    """The leader removes itself (thesis §4.2.2): it keeps leading until the change commits, then
    steps down and a remaining voter leads. Then a voter's machine is lost for good and replaced
    by a new id on an empty disk (learner, caught up, promoted, the lost one removed). The removed
    old leader keeps running and never disrupts: no term change after the new leader settles."""
    sim = boot(seed, "remove_leader_and_replace", n=5)
    a = _leader(sim)
    _propose_and_ack(sim, a, 2)
    change(sim, a, ConfChange(op=ChangeOp.REMOVE, node_id=a.id), wait=False)
    sim.wait_for(
        lambda: sim.settled_leader() not in (None, a), "a new leader after the removal", 60
    )
    new = _leader(sim)
    term = new.raft.status().term if new.raft else 0
    _propose_and_ack(sim, new, 2)
    assert new.raft is not None
    lost = next(v for v in new.raft.membership.voters if v != new.id)
    sim.kill_for_good(lost)
    (fresh,) = add_learners(sim, new, 1)
    change(sim, new, ConfChange(op=ChangeOp.PROMOTE, node_id=fresh))
    change(sim, new, ConfChange(op=ChangeOp.REMOVE, node_id=lost))
    _propose_and_ack(sim, new, 2)
    sim.run_for(sim.ticks(20 * sim.params.election_tick))  # the removed old leader keeps running
    facts = {
        "old_leader": a.id,
        "old_leader_role": a.raft.status().role if a.raft else None,
        "old_leader_config": a.raft.membership if a.raft else None,
        "voters": new.raft.membership.voters if new.raft else (),
        "fresh": fresh,
        "lost": lost,
        "term_unchanged": new.raft is not None and new.raft.status().term == term,
        "still_leader": sim.settled_leader() is new,
    }
    settle(sim)
    return Outcome(sim, facts)


def removed_node_cannot_disrupt(seed: int, *, pre_vote: bool) -> Outcome:
    """Thesis §4.2.3: a voter is cut off, then removed without ever hearing of it. It keeps
    believing it is a voter and campaigns (without pre-vote its term climbs); when the network
    heals, the cluster ignores it: same leader, same term, and it never leads."""
    sim = boot(seed, "removed_node_cannot_disrupt", n=3, pre_vote=pre_vote)
    leader = _leader(sim)
    assert leader.raft is not None
    victim = next(v for v in leader.raft.membership.voters if v != leader.id)
    sim.net.isolate(victim)
    change(sim, leader, ConfChange(op=ChangeOp.REMOVE, node_id=victim), wait=False)
    sim.wait_for(
        lambda: (
            leader.raft is not None
            and leader.raft.status().commit_index >= leader.raft.membership.index
        ),
        "the removal committed",
        60,
    )
    term = leader.raft.status().term
    sim.run_for(sim.ticks(20 * sim.params.election_tick))  # it campaigns alone
    v = sim.nodes[victim]
    victim_term = v.raft.status().term if v.raft else 0
    sim.heal()
    _propose_and_ack(sim, leader, 3)
    sim.run_for(sim.ticks(20 * sim.params.election_tick))
    facts = {
        "victim_term_while_cut_off": victim_term,
        "term": term,
        "term_after": leader.raft.status().term,
        "same_leader": sim.settled_leader() is leader,
        "victim_led": any(rec.node == victim for rec in sim.history.leaders.values()),
        "victim_knows": victim in (v.raft.membership.removed if v.raft else ()),
    }
    settle(sim)
    return Outcome(sim, facts)


def change_before_own_term_commit(seed: int) -> Outcome:
    """The single-server change erratum (Ongaro, raft-dev 2015). Voters S1..S4, learner S5.
    (1) S1 appends "promote S5" (D = S1..S5) and reaches only S5. (2) S2 is elected by S2, S3, S4
    under the old configuration, then loses S4. If S2 could propose "remove S1" (E = S2, S3, S4)
    before an entry of its own term commits, E (and what follows) would commit on S2 and S3
    alone, and S1 could then win under D with S4 and S5, whose logs do not hold S2's entries
    (Leader Completeness). The rule: S2 must first commit its term's entry, which needs S4 too."""
    # no leader lease (check-quorum off), so the election below needs no waiting
    sim = boot(seed, "change_before_own_term_commit", n=4, check_quorum=False)
    s1 = _leader(sim)
    (s5,) = add_learners(sim, s1, 1)
    assert s1.raft is not None
    s2, s3, s4 = sorted(set(s1.raft.membership.voters) - {s1.id})
    # (1) D reaches S5 only; then S1 and S5 are cut off from everyone
    sim.net.partition([s1.id, s5], [s2, s3, s4])
    change(sim, s1, ConfChange(op=ChangeOp.PROMOTE, node_id=s5), wait=False)
    sim.run_for(sim.ticks(3))
    sim.net.partition([s1.id], [s5], [s2, s3, s4])
    # (2) S2 wins with S3 and S4; S4 never gets anything from the new leader
    for nid in (s1.id, s2, s3, s4, s5):
        sim.nodes[nid].frozen = True  # timers stop: only the campaigns below happen
    held = sim.hold(
        lambda m: m.dst == s4 and isinstance(m, AppendEntries | Heartbeat | InstallSnapshot)
    )
    sim.campaign(s2)
    node2 = sim.nodes[s2]
    sim.wait_for(
        lambda: node2.raft is not None and node2.raft.status().role is Role.LEADER,
        f"{s2} leading",
        10 * sim.params.election_tick,
    )
    refused = ""
    try:
        assert node2.raft is not None
        sim.guard(node2.raft.propose_conf_change, ConfChange(op=ChangeOp.REMOVE, node_id=s1.id))
        sim.guard(node2.drive)
        for _ in range(3):
            sim.propose(node2)
            sim.run_for(sim.ticks(1))
    except Exception as err:  # ConfChangeRefused, wrapped by the guard
        refused = str(err)
    sim.run_for(sim.ticks(3))
    # (3) S1 restarts (as a follower, D in its log) next to S4 and S5 only, and campaigns under D
    sim.crash(s1.id)
    sim.restart(s1.id)
    sim.unhold(held, deliver=False)
    sim.net.heal()
    sim.net.partition([s1.id, s4, s5], [s2, s3])
    for _ in range(4):
        sim.campaign(s1.id)
        sim.run_for(sim.ticks(3 * sim.params.election_tick))
    for nid in (s1.id, s2, s3, s4, s5):
        sim.nodes[nid].frozen = False
    facts = {"refused": refused, "s1": s1.id, "s2": s2}
    sim.heal()
    settle(sim)
    return Outcome(sim, facts)
