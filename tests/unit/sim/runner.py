"""runner.py — one randomized run per seed: workload + fault schedule, then heal and check liveness.

``run_seed(seed)`` derives EVERYTHING from the seed (cluster size, Raft config, fault rates, how
much chaos), so ``RAFTKV_SIM_SEED=<n>`` alone replays a run exactly:

1. chaos phase: clients propose (unique values) and issue ReadIndex reads while the fault schedule
   crashes/restarts nodes (also in the middle of a Ready), partitions (symmetric and one-way),
   isolates the leader, flaps and clogs links, pauses nodes, drops/duplicates/delays messages and
   asks for leadership transfers;
2. heal: faults stop, the network becomes reliable, every node is restarted;
3. liveness: a leader all nodes agree on within ``LEADER_BOUND_TICKS`` ticks, then every proposal
   the stable leader accepts is applied on every node within ``COMMIT_BOUND_TICKS`` ticks;
4. final checks: all replicas hold the same state, every acknowledged write is in it, and the
   whole read/write history is linearizable (the exact check of linearizability.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from raftkv.raft import (
    ChangeOp,
    ConfChange,
    ConfChangeRefused,
    EntryKind,
    Membership,
    NotLeader,
    ProposalDropped,
    RaftError,
    Role,
)
from raftkv.raft.quorum import quorum_size
from tests.unit.sim.cluster import SimNode, SimParams, Simulation
from tests.unit.sim.kvmodel import decode_put
from tests.unit.sim.linearizability import WriteOp
from tests.unit.sim.network import FaultRates

__all__ = [
    "COMMIT_BOUND_TICKS",
    "LEADER_BOUND_TICKS",
    "FaultSchedule",
    "RunReport",
    "Workload",
    "random_params",
    "run_seed",
    "settle",
]

# Liveness bounds, in election timeouts (election_tick ticks). After the heal a leader needs at
# most a few randomized timeouts (each < 2 * election_tick) plus the time stale in-flight traffic
# takes to drain; the bounds are generous on purpose (they catch livelock, not slowness).
LEADER_BOUND_TICKS = 12  # x election_tick
COMMIT_BOUND_TICKS = 6  # x election_tick


def random_params(rng: random.Random) -> SimParams:
    """Draw a cluster + fault profile. Stormy and calm runs both matter."""
    n = rng.choice((3, 3, 5, 5, 5))
    election_tick = rng.choice((3, 5, 10, 10, 15))
    heartbeat_tick = rng.choice((1, 1, 2, 3))
    heartbeat_tick = min(heartbeat_tick, election_tick - 1)
    calm = rng.random() < 0.2
    rates = FaultRates(
        drop=0.0 if calm else rng.choice((0.0, 0.02, 0.05, 0.1, 0.2)),
        duplicate=0.0 if calm else rng.choice((0.0, 0.02, 0.1, 0.3)),
        delay_min=1,
        delay_max=rng.choice((2, 5, 10, 20)),
        long_delay=0.0 if calm else rng.choice((0.0, 0.01, 0.03, 0.1, 0.2)),
        long_delay_max=rng.choice((50, 200, 400)),
    )
    if not calm and rng.random() < 0.3:
        # election turmoil: slow vote traffic, so grants and rejections arrive terms late
        kinds = ("RequestVote", "RequestVoteResponse", "TimeoutNow", "Heartbeat")
        for name in rng.sample(kinds, 2):
            rates.type_delay[name] = rng.choice((20, 50, 150))
    return SimParams(
        n=n,
        election_tick=election_tick,
        heartbeat_tick=heartbeat_tick,
        pre_vote=rng.random() < 0.8,
        check_quorum=rng.random() < 0.8,
        max_inflight_msgs=rng.choice((1, 4, 64)),
        max_entries_per_msg=rng.choice((1, 3, 64)),
        max_bytes_per_msg=rng.choice((40, 1 << 20, 1 << 20)),
        tick_ms=10,
        clock_drift=rng.choice((0.0, 0.05, 0.2)),
        rates=rates,
        snapshot_every=rng.choice((0, 4, 10, 30)),
        crash_in_ready=0.0 if calm else rng.choice((0.0, 0.002, 0.01, 0.03)),
        keys=rng.choice((1, 3, 8)),
        clients=rng.choice((1, 4, 16)),
        retry=rng.choice((0.0, 0.5, 1.0)),
    )


class Workload:
    """Clients: a write or a ReadIndex read every ``gap`` time units on average."""

    def __init__(self, sim: Simulation, gap: float, write_ratio: float) -> None:
        self.sim = sim
        self.gap = gap
        self.write_ratio = write_ratio
        self.running = False

    def start(self) -> None:
        self.running = True
        self._schedule()

    def stop(self) -> None:
        self.running = False

    def _schedule(self) -> None:
        self.sim.schedule(max(1, round(self.sim.rng.expovariate(1 / self.gap))), self._op)

    def _op(self) -> None:
        if not self.running:
            return
        self._schedule()
        sim = self.sim
        node = sim.client_target()
        if node is None:
            return
        if sim.rng.random() < self.write_ratio:
            sim.propose(node)
        else:
            sim.read(node)


@dataclass(slots=True)
class FaultMix:
    gap_ticks: float  # mean time between fault actions
    weights: dict[str, int] = field(default_factory=dict)


class FaultSchedule:
    """Seeded chaos. Each action is traced as a ``fault`` line."""

    ACTIONS = (
        "crash",
        "crash_leader",
        "partition",
        "isolate_leader",
        "one_way",
        "flap",
        "clog",
        "pause",
        "heal",
        "swizzle",
        "transfer",
        "campaign_storm",
        # membership (thesis §4): a fresh node joins as a learner, a learner is promoted, a member
        # (the leader too) is removed, a voter's machine is lost for good and replaced by a new id
        "add_learner",
        "promote",
        "remove",
        "remove_leader",
        "replace",
    )
    MAX_MEMBERS = 7

    def __init__(self, sim: Simulation, mix: FaultMix) -> None:
        self.sim = sim
        self.mix = mix
        self.running = False
        self._names = [a for a in self.ACTIONS if mix.weights.get(a, 0) > 0]
        self._w = [mix.weights[a] for a in self._names]
        # a replacement in progress: (the lost voter, its replacement or None yet)
        self._replacing: tuple[str, str | None] | None = None

    @classmethod
    def random_mix(cls, rng: random.Random) -> FaultMix:
        weights = {a: rng.choice((0, 1, 2, 4)) for a in cls.ACTIONS}
        weights["heal"] = max(weights["heal"], 2)
        return FaultMix(gap_ticks=rng.choice((5, 10, 20, 40)), weights=weights)

    def start(self) -> None:
        self.running = True
        self._schedule()

    def stop(self) -> None:
        self.running = False

    def _schedule(self) -> None:
        sim = self.sim
        mean = sim.ticks(self.mix.gap_ticks)
        sim.schedule(max(1, round(sim.rng.expovariate(1 / mean))), self._act)

    def _act(self) -> None:
        if not self.running or not self._names:
            return
        self._schedule()
        sim = self.sim
        action = sim.rng.choices(self._names, self._w)[0]
        sim.counters["fault " + action] += 1
        getattr(self, "_" + action)()

    # -- actions -----------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        self.sim.trace("-", "fault", text)

    def _crash_node(self, node: SimNode) -> None:
        sim = self.sim
        node.crash()
        down_for = sim.ticks(sim.rng.uniform(1, 4 * sim.params.election_tick))
        sim.schedule(round(down_for), sim.restart, node.id)
        self._note(f"{node.id} down for {down_for} units")

    def _crash(self) -> None:
        up = self.sim.up_nodes()
        if up:
            self._crash_node(self.sim.rng.choice(up))

    def _crash_leader(self) -> None:
        leaders = self.sim.leaders()
        if leaders:
            self._crash_node(leaders[0])

    def _heal_later(self, min_ticks: float, max_ticks: float) -> None:
        sim = self.sim
        sim.schedule(round(sim.ticks(sim.rng.uniform(min_ticks, max_ticks))), self._heal)

    def _partition(self) -> None:
        sim = self.sim
        ids = list(sim.ids)
        sim.rng.shuffle(ids)
        cut = sim.rng.randint(1, len(ids) - 1)
        a, b = ids[:cut], ids[cut:]
        sim.net.partition(a, b)
        self._note(f"partition {sorted(a)} | {sorted(b)}")
        self._heal_later(2, 6 * sim.params.election_tick)

    def _isolate_leader(self) -> None:
        leaders = self.sim.leaders()
        if leaders:
            self.sim.net.isolate(leaders[0].id)
            self._note(f"isolate leader {leaders[0].id}")
            self._heal_later(2, 6 * self.sim.params.election_tick)

    def _one_way(self) -> None:
        sim = self.sim
        a, b = sim.rng.sample(sim.ids, 2)
        if sim.rng.random() < 0.5:
            sim.net.cut_link(a, b)
            self._note(f"one-way cut {a} -> {b}")
        else:  # a node that can send but not receive (or the reverse)
            inbound = sim.rng.random() < 0.5
            for other in sim.ids:
                if other != a:
                    sim.net.cut_link(other, a) if inbound else sim.net.cut_link(a, other)
            self._note(f"one-way: {a} {'deaf' if inbound else 'mute'}")
        self._heal_later(2, 6 * sim.params.election_tick)

    def _flap(self) -> None:
        sim = self.sim
        a, b = sim.rng.sample(sim.ids, 2)
        period = sim.ticks(sim.rng.uniform(0.5, 2 * sim.params.election_tick))
        flips = sim.rng.randint(2, 12)
        self._note(f"flapping link {a} <-> {b}: {flips} flips every {period} units")
        for i in range(flips):
            sim.schedule(round(period * (i + 1)), self._flip, a, b, i % 2 == 0)

    def _flip(self, a: str, b: str, down: bool) -> None:
        if not self.running:
            return
        net = self.sim.net
        if down:
            net.cut_link(a, b)
            net.cut_link(b, a)
        else:
            net.restore_link(a, b)
            net.restore_link(b, a)

    def _clog(self) -> None:
        sim = self.sim
        a, b = sim.rng.sample(sim.ids, 2)
        extra = sim.ticks(sim.rng.uniform(1, 3 * sim.params.election_tick))
        sim.net.clogged[(a, b)] = extra
        self._note(f"clog {a} -> {b} by {extra} units")
        sim.schedule(
            round(sim.ticks(sim.rng.uniform(1, 5 * sim.params.election_tick))), self._unclog, a, b
        )

    def _unclog(self, a: str, b: str) -> None:
        self.sim.net.clogged.pop((a, b), None)

    def _pause(self) -> None:
        sim = self.sim
        node = sim.rng.choice(sim.ids)
        dur = sim.ticks(sim.rng.uniform(1, 3 * sim.params.election_tick))
        sim.nodes[node].paused_until = sim.now + dur
        self._note(f"pause {node} for {dur} units")

    def _heal(self) -> None:
        if self.running:
            self.sim.heal()

    def _swizzle(self) -> None:
        """FoundationDB's swizzle-clogging: cut links one by one, restore them in random order."""
        sim = self.sim
        links = [(a, b) for a in sim.ids for b in sim.ids if a != b]
        chosen = sim.rng.sample(links, sim.rng.randint(1, len(links)))
        step = sim.ticks(sim.rng.uniform(0.2, 2))
        self._note(f"swizzle {len(chosen)} links")
        t = 0.0
        for link in chosen:
            t += step
            sim.schedule(round(t), self._cut, *link)
        order = list(chosen)
        sim.rng.shuffle(order)
        t += sim.ticks(sim.rng.uniform(1, 3 * sim.params.election_tick))
        for link in order:
            t += step
            sim.schedule(round(t), sim.net.restore_link, *link)

    def _cut(self, a: str, b: str) -> None:
        if self.running:
            self.sim.net.cut_link(a, b)

    def _transfer(self) -> None:
        sim = self.sim
        leaders = sim.leaders()
        if not leaders or leaders[0].raft is None:
            return
        target = sim.rng.choice([None, *sim.ids])
        try:
            got = leaders[0].raft.transfer_leadership(target)
        except (NotLeader, RaftError) as err:
            self._note(f"transfer from {leaders[0].id} to {target}: {err}")
            return
        self._note(f"transfer leadership {leaders[0].id} -> {got}")
        leaders[0].drive()

    # -- membership ----------------------------------------------------------------------------
    def _leader(self) -> SimNode | None:
        leaders = self.sim.leaders()
        return leaders[0] if leaders and leaders[0].raft is not None else None

    def _safe(self, conf: Membership, voters: tuple[str, ...]) -> bool:
        """Would ``voters`` still hold a majority of machines that are not lost for good?"""
        live = sum(1 for v in voters if v not in self.sim.dead)
        return bool(voters) and live >= quorum_size(len(voters))

    def _propose_change(self, leader: SimNode, change: ConfChange) -> bool:
        assert leader.raft is not None
        try:
            index = leader.raft.propose_conf_change(change)
        except (NotLeader, ProposalDropped, ConfChangeRefused) as err:
            self._note(f"{change.describe()} on {leader.id} refused: {err}")
            return False
        self._note(f"{change.describe()} proposed on {leader.id} at {index}")
        self.sim.counters["change " + change.op.value] += 1
        return True

    def _add_learner(self) -> str | None:
        sim = self.sim
        leader = self._leader()
        if leader is None or leader.raft is None:
            return None
        conf = leader.raft.membership
        if len(conf.members) >= self.MAX_MEMBERS:
            return None
        node_id = f"raft-{sim._next_id}"
        if not self._propose_change(
            leader, ConfChange(op=ChangeOp.ADD_LEARNER, node_id=node_id, url=f"sim://{node_id}")
        ):
            return None
        sim.add_node(conf.voters)  # a fresh disk; its flags name the voters, not itself
        leader.drive()
        return node_id

    def _promote(self, only: str | None = None) -> None:
        leader = self._leader()
        if leader is None or leader.raft is None:
            return
        conf = leader.raft.membership
        learners = [n for n in conf.learners if n not in self.sim.dead and only in (None, n)]
        if not learners:
            return
        nid = self.sim.rng.choice(learners)
        change = ConfChange(op=ChangeOp.PROMOTE, node_id=nid)
        if self._safe(conf, (*conf.voters, nid)) and self._propose_change(leader, change):
            leader.drive()

    def _remove_member(self, leader: SimNode, nid: str) -> None:
        assert leader.raft is not None
        conf = leader.raft.membership
        voters = tuple(v for v in conf.voters if v != nid)
        change = ConfChange(op=ChangeOp.REMOVE, node_id=nid)
        if not (nid in conf.members and self._safe(conf, voters)):
            return
        if self._propose_change(leader, change):
            leader.drive()

    def _remove(self) -> None:
        leader = self._leader()
        if leader is None or leader.raft is None:
            return
        members = list(leader.raft.membership.members)
        self._remove_member(leader, self.sim.rng.choice(members))

    def _remove_leader(self) -> None:
        leader = self._leader()
        if leader is not None:
            self._remove_member(leader, leader.id)

    def _replace(self) -> None:
        """Lose a voter's machine for good, then (over the next actions) add a new node with a
        new id, promote it, and remove the lost one."""
        sim = self.sim
        if self._replacing is None:
            leader = self._leader()
            if leader is None or leader.raft is None or sim.dead - self._gone():
                return  # one lost machine at a time
            conf = leader.raft.membership
            st = leader.raft.status()
            ready = leader.view.term_at(st.commit_index) == st.term
            if not ready or conf.index > st.commit_index or len(conf.voters) < 3:
                return
            victim = sim.rng.choice([v for v in conf.voters if v != leader.id])
            live = sum(1 for v in conf.voters if v != victim and v not in sim.dead)
            if live < quorum_size(len(conf.voters)):
                return
            sim.kill_for_good(victim)
            self._note(f"{victim} lost for good: replacing it")
            self._replacing = (victim, None)
            self._schedule_replace_step()
            return
        lost, new = self._replacing
        leader = self._leader()
        if leader is None or leader.raft is None:
            return
        conf = leader.raft.membership
        if lost not in conf.members:
            self._note(f"replacement of {lost} done")
            sim.counters["member replaced"] += 1
            self._replacing = None
        elif new is None or (new not in conf.members and new in sim.nodes):
            self._replacing = (lost, self._add_learner() or new)
        elif new in conf.learners:
            self._promote(only=new)
        else:
            self._remove_member(leader, lost)

    def _schedule_replace_step(self) -> None:
        """An operator works through the replacement: one step every election timeout or so."""
        sim = self.sim
        sim.schedule(sim.ticks(sim.rng.uniform(1, 2) * sim.params.election_tick), self._step)

    def _step(self) -> None:
        if self.running and self._replacing is not None:
            self._replace()
            if self._replacing is not None:
                self._schedule_replace_step()

    def _gone(self) -> set[str]:
        """Lost machines no configuration of the cluster holds any more."""
        sim = self.sim
        confs = [n.raft.membership for n in sim.up_nodes() if n.raft is not None]
        return {d for d in sim.dead if all(d not in c.members for c in confs)}

    def _campaign_storm(self) -> None:
        """Every follower's election timer fires at once (as after a long GC pause)."""
        sim = self.sim
        self._note("campaign storm")
        for node in sim.up_nodes():
            if node.raft is not None and hasattr(node.raft, "campaign"):
                node.raft.campaign()
                node.drive()


@dataclass(slots=True)
class RunReport:
    seed: int
    params: SimParams
    steps: int
    virtual_time: int
    elections: int
    proposed: int
    acked: int
    reads: int
    snapshots_installed: int
    crashes: int
    leader_after_heal_ticks: float
    counters: dict[str, int]

    def summary(self) -> str:
        p = self.params
        return (
            f"seed={self.seed} n={p.n} steps={self.steps} t={self.virtual_time} "
            f"elections={self.elections} proposed={self.proposed} acked={self.acked} "
            f"reads={self.reads} snapshots={self.snapshots_installed} crashes={self.crashes} "
            f"leader_after_heal={self.leader_after_heal_ticks:.1f} ticks"
        )


def settle(sim: Simulation, *, proposals: int = 3) -> float:
    """Heal everything, then check liveness. Returns the ticks it took to get a stable leader.

    Bounds: a leader that all nodes follow and that committed an entry of its term within
    ``LEADER_BOUND_TICKS`` election timeouts, plus one round trip per entry of backlog (entries
    some node holds above the lowest commit index: the new leader may have to replicate all of
    them one by one, with ``max_inflight_msgs=1`` and ``max_entries_per_msg=1``); then every
    proposal the stable leader accepts applied on all nodes within ``COMMIT_BOUND_TICKS`` more
    (plus one round trip per entry the slowest node lags behind). A leader that loses office
    before its proposals are applied was not stable: the next one is tried (at most 3 times).
    """
    sim.heal()
    sim.params.crash_in_ready = 0.0
    sim.params.retry = 0.0  # clients stop retrying: the writes below are the only new ones
    sim.net.rates = FaultRates(delay_min=1, delay_max=min(5, sim.params.rates.delay_max))
    sim.net.filters.clear()
    for node in sim.nodes.values():
        node.paused_until = 0
        node.frozen = False
        if not node.up:
            sim.restart(node.id)
    sts = sim.statuses()
    backlog = max(s.last_log_index for s in sts.values())
    backlog -= min(s.commit_index for s in sts.values())
    old = sim.params.rates
    in_flight = max(old.delay_max, old.long_delay_max if old.long_delay else 0)
    in_flight += max(old.type_delay.values(), default=0)
    et = sim.params.election_tick
    bound = sim.ticks(LEADER_BOUND_TICKS * et) + in_flight + backlog * 2 * (5 + 1)
    start = sim.now
    # Messages already in flight keep arriving (with their old delays): they are part of the test.
    if not sim.run_until(lambda: sim.settled_leader() is not None, bound):
        raise sim.fail(
            "Liveness",
            f"no stable leader {bound} time units after the network healed (backlog {backlog}; "
            f"statuses: {status_line(sim)})",
        )
    took = (sim.now - start) / sim.params.tick_ms
    # Proposals to the stable leader. If leadership moves before they are applied (e.g. a
    # TimeoutNow from a transfer aborted before the heal arrives late), that leader was not
    # stable: try again with the next one, a bounded number of times.
    for _attempt in range(3):
        leader, ops = _propose_to_stable_leader(sim, proposals, sim.ticks(LEADER_BOUND_TICKS * et))
        term = sim.term_of(leader.id)
        conf = leader.raft.membership if leader.raft is not None else None
        members = [sim.nodes[m] for m in sim.members_of(conf)]
        lag = max(leader.view.last_index() - n.kv.index for n in members)
        commit_bound = sim.ticks(COMMIT_BOUND_TICKS * et) + lag * 2 * (5 + 1)

        def done(ops: list[WriteOp] = ops, members: list[SimNode] = members) -> bool:
            if any(op.complete is None for op in ops):
                return False
            target = max(op.index or 0 for op in ops)
            return all(n.kv.index >= target for n in members)

        def moved(node_id: str = leader.id, term: int = term) -> bool:
            # a new term, or the same term without office: a leader whose own removal committed
            # steps down without a term change (its last proposals' outcome stays unknown to it)
            raft = sim.nodes[node_id].raft
            return (
                raft is None
                or raft.status().role is not Role.LEADER
                or sim.term_of(node_id) != term
            )

        sim.run_until(lambda: done() or moved(), commit_bound)
        if done():
            break
        if not moved():
            missing = [op.value for op in ops if op.complete is None]
            raise sim.fail(
                "Liveness",
                f"proposals accepted by the stable leader {leader.id} not applied everywhere "
                f"within {commit_bound} time units (unacknowledged: {missing}; "
                f"{status_line(sim)})",
            )
        sim.trace("-", "settle", f"leader {leader.id} of term {term} lost office: again")
        sim.run_until(lambda: sim.settled_leader() is not None, bound)
    else:
        raise sim.fail("Liveness", f"leadership kept moving after the heal ({status_line(sim)})")
    final_checks(sim, leader)
    return took


def _propose_to_stable_leader(
    sim: Simulation, count: int, timeout: int
) -> tuple[SimNode, list[WriteOp]]:
    """Send ``count`` proposals to the settled leader (waiting out e.g. a transfer in progress)."""
    ops: list[WriteOp] = []
    deadline = sim.now + timeout
    leader = None
    while len(ops) < count:
        now_leader = sim.settled_leader()
        if now_leader is not leader:
            leader, ops = now_leader, []
        op = sim.propose(leader) if leader is not None else None
        if op is not None:
            ops.append(op)
            continue
        if sim.now >= deadline or not sim.step():
            raise sim.fail(
                "Liveness",
                f"no stable leader accepted proposals after the heal ({status_line(sim)})",
            )
    assert leader is not None
    return leader, ops


def status_line(sim: Simulation) -> str:
    parts = []
    for node in sim.nodes.values():
        if node.raft is None:
            parts.append(f"{node.id}=down")
            continue
        st = node.raft.status()
        parts.append(
            f"{node.id}={st.role.value}/t{st.term}/leader={st.leader}/commit={st.commit_index}"
            f"/last={st.last_log_index}"
        )
    return " ".join(parts)


def final_checks(sim: Simulation, leader: SimNode | None = None) -> None:
    """Every replica (every live member of the leader's configuration) converged to the same
    state holding every acknowledged write."""
    hist = sim.history
    conf = leader.raft.membership if leader is not None and leader.raft is not None else None
    nodes = [sim.nodes[m] for m in sim.members_of(conf)]
    sim.run_until(
        lambda: len({n.kv.index for n in nodes}) == 1,
        sim.ticks(COMMIT_BOUND_TICKS * sim.params.election_tick),
    )
    digests = {(n.kv.index, n.kv.digest) for n in nodes}
    if len({d[0] for d in digests}) != 1:
        raise sim.fail(
            "Liveness",
            "replicas did not converge: applied "
            + ", ".join(f"{n.id}={n.kv.index}" for n in nodes),
        )
    if len(digests) != 1:
        raise sim.fail(
            "State Machine Safety", "replicas applied the same index to different states"
        )
    final = nodes[0].kv
    for value, (index, term) in hist.acked.items():
        ce = hist.committed.get(index)
        if ce is None or ce.term != term or index > final.index:
            raise sim.fail(
                "No acknowledged write lost", f"acknowledged write {value} at {index}/{term} lost"
            )
    # every key's final value is the last committed write to it (a retried write counts once)
    last: dict[str, str] = {}
    sessions: set[tuple[str, int]] = set()
    for index in sorted(i for i in hist.committed if i <= final.index):
        ce = hist.committed[index]
        if ce.kind is EntryKind.NORMAL and ce.data:
            key, value, client, seq = decode_put(ce.data)
            if (client, seq) not in sessions:
                sessions.add((client, seq))
                last[key] = value
    if final.index == hist.max_committed and last != final.kv:
        raise sim.fail("State Machine Safety", f"final state {final.kv} != log replay {last}")
    # the real KV state machines (data + exactly-once sessions) are byte-for-byte identical
    if len({n.kv.shadow.snapshot() for n in nodes}) != 1:
        raise sim.fail(
            "KV state machine agrees with the model",
            "replicas at the same index hold different KV state machine snapshots",
        )
    sim.guard(hist.check_linearizable)


def run_seed(
    seed: int, *, chaos_ticks: int | None = None, trace: list[str] | None = None
) -> RunReport:
    """One full randomized run. Raises SimFailure (with the seed) on any violation.

    ``trace``, if given, receives every trace line of the run (determinism tests).
    """
    rng = random.Random(seed)
    params = random_params(rng)
    sim = Simulation(seed, params, rng=rng, record_trace=trace is not None)
    mix = FaultSchedule.random_mix(rng)
    if chaos_ticks is None:
        chaos_ticks = rng.choice((100, 200, 300))
    workload = Workload(sim, gap=sim.ticks(rng.choice((0.3, 1, 3))), write_ratio=0.6)
    faults = FaultSchedule(sim, mix)
    workload.start()
    faults.start()
    sim.run_for(sim.ticks(chaos_ticks))
    faults.stop()
    workload.stop()
    try:
        took = settle(sim)
    finally:
        if trace is not None and sim.trace_lines is not None:
            trace.extend(sim.trace_lines)
    crashes = sum(n.stats["crashes"] for n in sim.nodes.values())
    return RunReport(
        seed=seed,
        params=params,
        steps=sim.steps,
        virtual_time=sim.now,
        elections=sim.history.elections,
        proposed=sim.ops["proposed"],
        acked=len(sim.history.acked),
        reads=len(sim.history.reads),
        snapshots_installed=sim.history.snapshots_installed,
        crashes=crashes,
        leader_after_heal_ticks=took,
        counters={
            **sim.counters,
            "messages dropped": sim.net.dropped,
            "messages duplicated": sim.net.duplicated,
        },
    )
