"""cluster.py — the deterministic simulation of a raftkv cluster (FoundationDB / TigerBeetle style).

One ``random.Random(seed)`` feeds every choice: election timeouts (each node gets its own
``random.Random`` drawn from it), message fates, faults, client operations. Time is virtual: a heap
of ``(time, seq, action)`` events; nothing reads a real clock, so a seed replays exactly.

Each ``SimNode`` is a driver that follows the Ready contract (raftkv/raft/ready.py) to the letter:
persist snapshot, then hard state + entries and sync, THEN send messages, apply committed entries to
the KV model, serve read states, handle the soft state, ``advance``. A crash can be injected at any
point of that sequence: the simulated disk then loses what was not yet synced. A crashed node comes
back with only what its disk kept (``RestoredState``), its KV state rebuilt from the snapshot plus
the entries the core hands out again.

After EVERY event, the touched nodes are observed and checkers.History checks the Raft safety
properties; any violation (or an exception out of the core) becomes a ``SimFailure`` whose text
starts with ``RAFTKV_SIM_SEED=<n>`` and ends with the tail of the event trace.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from raftkv.raft import (
    AppendEntriesResponse,
    Config,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    NotLeader,
    ProposalDropped,
    RaftNode,
    Ready,
    RequestVote,
    RequestVoteResponse,
    RestoredState,
    Role,
    Snapshot,
    SnapshotMeta,
    Status,
    decode_message,
    encode_message,
)
from tests.unit.sim.checkers import History, Violation
from tests.unit.sim.disk import DiskImage, SimDisk
from tests.unit.sim.kvmodel import KVState, ShadowMismatch, encode_put
from tests.unit.sim.linearizability import ReadOp, WriteOp
from tests.unit.sim.network import FaultRates, SimNetwork

__all__ = ["SimFailure", "SimNode", "SimParams", "Simulation"]

_T = TypeVar("_T")


class SimFailure(AssertionError):
    """A simulated run broke a property. ``str()`` carries the seed and a trace tail."""

    def __init__(self, seed: int, prop: str, detail: str, tail: list[str], replay: str) -> None:
        self.seed = seed
        self.prop = prop
        self.detail = detail
        self.tail = tail
        lines = [
            f"RAFTKV_SIM_SEED={seed} violated {prop}: {detail}",
            f"replay: {replay}",
            f"trace tail ({len(tail)} events):",
            *("  " + t for t in tail),
        ]
        super().__init__("\n".join(lines))


class _Crash(Exception):
    """Raised inside a driver to simulate a power loss at that exact point."""


@dataclass(slots=True)
class SimParams:
    """Everything that shapes one run (all derived from the seed for random runs)."""

    n: int = 3
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight_msgs: int = 64
    max_entries_per_msg: int = 256
    max_bytes_per_msg: int = 1 << 20
    tick_ms: int = 10  # virtual time units per tick
    clock_drift: float = 0.0  # each node's tick period is tick_ms * (1 +- drift)
    rates: FaultRates = field(default_factory=FaultRates)
    snapshot_every: int = 0  # compact when applied - snapshot index >= this (0 = never)
    crash_in_ready: float = 0.0  # probability that a Ready is cut short by a crash
    codec: bool = True  # round-trip every message through encode/decode_message
    keys: int = 4  # client key space
    clients: int = 4  # client sessions (client_id) writes are spread over
    retry: float = 0.0  # probability a client retries a write whose outcome it never learned
    trace_len: int = 400

    def config(self, node_id: str, ids: tuple[str, ...]) -> Config:
        return Config(
            id=node_id,
            peers=ids,
            election_tick=self.election_tick,
            heartbeat_tick=self.heartbeat_tick,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            max_inflight_msgs=self.max_inflight_msgs,
            max_entries_per_msg=self.max_entries_per_msg,
            max_bytes_per_msg=self.max_bytes_per_msg,
        )


@dataclass(slots=True)
class _Proposal:
    op: WriteOp
    index: int
    term: int
    data: bytes


@dataclass(slots=True)
class _PendingRead:
    request_id: str
    key: str
    start: int
    index: int | None = None


class SimNode:
    """One simulated node: a RaftNode plus its driver, disk and KV state machine."""

    def __init__(self, sim: Simulation, node_id: str, flags: tuple[str, ...] | None = None) -> None:
        self.sim = sim
        self.id = node_id
        # the peers this node was started with (its flags): they only bootstrap an empty cluster;
        # a node added later is started with the current voters, itself not among them (joining)
        self.flags = flags if flags is not None else sim.ids
        self._conf_dirty = True  # the log's configuration may have changed: re-check it
        self._seen_conf_index = -1
        self.disk = SimDisk()
        self.view = DiskImage()  # the log as the node wrote it (durable + unsynced)
        self.kv = KVState()
        self.raft: RaftNode | None = None
        self.up = False
        self.incarnation = 0
        self.paused_until = 0
        self.tick_period = sim.params.tick_ms
        self.snapshot_every = sim.params.snapshot_every
        self.proposals: dict[int, _Proposal] = {}
        self.reads: dict[str, _PendingRead] = {}
        self.waiting_reads: list[_PendingRead] = []
        self.frozen = False  # scenario control: no ticks
        self._leader_term = -1  # the term we last observed this node lead
        self._last_term = 0
        self._last_commit = 0
        self._leader_commit = 0
        self.stats = {"crashes": 0, "snapshots_received": 0, "compactions": 0, "applied": 0}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Boot (or reboot) from whatever the disk holds."""
        img = self.disk.recover()
        self.view = img.copy()
        if img.snapshot is not None:
            self.kv = _restore_kv(img.snapshot.data)
            if self.kv.index != img.snapshot.meta.index:
                raise Violation(
                    "Driver",
                    f"{self.id}: snapshot meta index {img.snapshot.meta.index} but state at "
                    f"{self.kv.index}",
                )
        else:
            self.kv = KVState()
        restored = RestoredState(
            hard_state=img.hard_state, snapshot=img.snapshot, entries=tuple(img.entries)
        )
        sim = self.sim
        self.incarnation += 1
        cfg = sim.params.config(self.id, self.flags)
        self._conf_dirty = True
        self.raft = RaftNode(cfg, rng=random.Random(sim.rng.getrandbits(64)), restored=restored)
        self.up = True
        self._leader_term = -1
        self._last_term = img.hard_state.term
        self._last_commit = 0
        drift = sim.params.clock_drift
        base = sim.params.tick_ms
        self.tick_period = max(1, round(base * (1 + sim.rng.uniform(-drift, drift))))
        sim.trace(self.id, "start", f"incarnation={self.incarnation} disk={_describe_image(img)}")
        sim.schedule(sim.rng.randint(1, self.tick_period), self._tick_event, self.incarnation)
        self.drive()

    def crash(self, why: str = "crash") -> None:
        if not self.up:
            return
        lost = self.disk.crash(self.sim.rng)
        self.sim.counters[why] += 1
        self.sim.counters["unsynced writes lost"] += lost
        self.up = False
        self.raft = None
        self.stats["crashes"] += 1
        for p in self.proposals.values():  # outcome unknown to the client
            self.sim.outcome_unknown(p.op)
        self.proposals.clear()
        self.reads.clear()
        self.waiting_reads.clear()
        self.sim.trace(self.id, why, f"lost {lost} unsynced write(s)")

    # -- inputs ------------------------------------------------------------------------------
    def _tick_event(self, incarnation: int) -> None:
        if incarnation != self.incarnation or not self.up:
            return
        self.sim.schedule(self.tick_period, self._tick_event, incarnation)
        if self.frozen or self.paused_until > self.sim.now:
            return
        assert self.raft is not None
        self.raft.tick()
        self.drive()

    def deliver(self, msg: Message) -> None:
        if not self.up:
            return
        if self.paused_until > self.sim.now:
            # a paused process reads its socket when it wakes up (if the link still works)
            self.sim.schedule(self.paused_until - self.sim.now + 1, self.sim._deliver, msg)
            return
        assert self.raft is not None
        self.sim.trace(self.id, "recv", msg)
        self.raft.step(msg)
        self.drive()

    # -- the driver (ready.py's contract) -----------------------------------------------------
    def drive(self) -> None:
        raft = self.raft
        sim = self.sim
        sim.touched.add(self.id)
        while raft is not None and self.up and raft.has_ready():
            rd = raft.ready()
            sim.trace(self.id, "ready", rd)
            crash_at = -1
            if sim.params.crash_in_ready and sim.rng.random() < sim.params.crash_in_ready:
                # 0 before the snapshot/writes, 1 between the writes and their sync (a torn
                # tail), 2 after the sync, 3 halfway through sending, 4 halfway through
                # applying, 5 after everything but advance()
                crash_at = sim.rng.choice((0, 1, 1, 1, 2, 3, 4, 5))
            try:
                self._handle(rd, raft.status(), crash_at)
            except _Crash:
                self.crash("crash-in-ready")
                return
            raft.advance(rd)
        self._maybe_compact()

    def _handle(self, rd: Ready, st: Status, crash_at: int) -> None:
        sim = self.sim
        hist = sim.history
        leading = st.role is Role.LEADER
        # 1. snapshot from the leader
        if rd.snapshot is not None:
            snap = rd.snapshot
            if leading:
                raise Violation("Leader Append-Only", f"{self.id} (leader) installed a snapshot")
            if snap.meta.index <= self.kv.index:
                raise Violation(
                    "State Machine Safety",
                    f"{self.id} was handed snapshot {snap.meta.index}/{snap.meta.term} but already "
                    f"applied up to {self.kv.index}: restoring it would roll the state back",
                )
            self.disk.save_snapshot(snap, received=True)
            self.view.install_snapshot(snap, keep_suffix=False)
            self._conf_dirty = True
            self.kv = _restore_kv(snap.data)
            hist.snapshot_restored(self.id, snap.meta.index, snap.meta.term, self.kv.digest)
            self.stats["snapshots_received"] += 1
            sim.counters["snapshot installed"] += 1
            for idx in [i for i in self.proposals if i <= snap.meta.index]:
                self.sim.outcome_unknown(self.proposals.pop(idx).op)
        if crash_at == 0:
            raise _Crash
        # A leader's messages promise nothing about its own disk (its term and vote are already
        # durable): like the real driver it sends them BEFORE writing its entries (thesis
        # §10.2.1), so a crash can leave followers holding entries the leader lost.
        hs_now = rd.hard_state
        durable_hs = self.disk.durable.hard_state
        early = leading and (
            hs_now is None
            or (hs_now.term, hs_now.voted_for) == (durable_hs.term, durable_hs.voted_for)
        )
        if early:
            self._send_all(rd, crash_at)
        # 2. hard state + entries, then ONE sync
        if rd.entries:
            self._write_entries(rd.entries, leading, st)
        if rd.hard_state is not None:
            self._write_hard_state(rd.hard_state)
        self.disk.write(rd.hard_state, rd.entries)
        if crash_at == 1:
            raise _Crash
        if rd.entries or rd.hard_state is not None:
            self.disk.sync()
        if crash_at == 2:
            raise _Crash
        # 3. messages: only now may they leave the node (a leader's left already)
        if not early:
            self._send_all(rd, crash_at)
        # 4. committed entries
        half = len(rd.committed_entries) // 2
        for i, e in enumerate(rd.committed_entries):
            if crash_at == 4 and i == half:
                raise _Crash
            self._apply(e, st.term)
        if self.waiting_reads:
            self._serve_ready_reads()
        # 5. read states
        for rs in rd.read_states:
            pr = self.reads.pop(rs.request_id, None)
            if pr is None:
                continue
            pr.index = rs.index
            if self.kv.index >= rs.index:
                self._serve(pr)
            else:
                self.waiting_reads.append(pr)
        # 6. soft state
        if rd.soft_state is not None and rd.soft_state[0] is not Role.LEADER:
            if self.proposals or self.reads:
                sim.trace(
                    self.id,
                    "client",
                    f"lost leadership: {len(self.proposals)} proposal(s) and "
                    f"{len(self.reads)} read(s) fail",
                )
            for p in self.proposals.values():
                sim.outcome_unknown(p.op)
            self.proposals.clear()
            self.reads.clear()
        if crash_at == 5:
            raise _Crash

    def _send_all(self, rd: Ready, crash_at: int) -> None:
        sim = self.sim
        half = len(rd.messages) // 2
        for i, m in enumerate(rd.messages):
            if crash_at == 3 and i == half:
                raise _Crash
            if sim.rule_checks:
                self._check_send(m)
            sim.send(m)

    def _write_entries(self, entries: tuple[Entry, ...], leading: bool, st: Status) -> None:
        view = self.view
        first = entries[0].index
        last = view.last_index()
        for a, b in itertools.pairwise(entries):
            if b.index != a.index + 1 or b.term < a.term:
                raise Violation(
                    "Log Matching",
                    f"{self.id} handed a non-contiguous batch: {a.index}/{a.term} "
                    f"then {b.index}/{b.term}",
                )
        if first > last + 1:
            raise Violation("Log Matching", f"{self.id} log gap: last {last}, next write {first}")
        if first <= last:
            if leading:
                raise Violation(
                    "Leader Append-Only",
                    f"{self.id}, leader of term {st.term}, overwrites its log from index {first} "
                    f"(last {last})",
                )
            for e in entries:
                old = view.term_at(e.index)
                if old is not None and old != e.term and e.index <= self._last_commit:
                    raise Violation(
                        "State Machine Safety",
                        f"{self.id} overwrites committed entry {e.index}/{old} with term {e.term} "
                        f"(commit {self._last_commit})",
                    )
        if first <= last or any(e.kind is EntryKind.CONFIG for e in entries):
            self._conf_dirty = True
        view.append(entries)
        for e in entries:
            self.sim.history.entry_written(self.id, e, view.term_at(e.index - 1))

    def _write_hard_state(self, hs: HardState) -> None:
        old = self.view.hard_state
        if hs.term < old.term:
            raise Violation("Durability", f"{self.id} persisted term {hs.term} after {old.term}")
        if hs.term == old.term and old.voted_for is not None and hs.voted_for != old.voted_for:
            raise Violation(
                "Election Safety",
                f"{self.id} changed its vote in term {hs.term}: {old.voted_for} -> {hs.voted_for}",
            )
        if hs.commit < old.commit:
            raise Violation(
                "Durability", f"{self.id} persisted commit {hs.commit} after {old.commit}"
            )
        self.view.hard_state = hs

    def _check_send(self, m: Message) -> None:
        """Persist before send: what a message promises must already be durable."""
        durable = self.disk.durable
        if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
            hs = durable.hard_state
            if hs.term != m.term or hs.voted_for != m.dst:
                raise Violation(
                    "Persist before send",
                    f"{self.id} grants its vote to {m.dst} in term {m.term}, but its disk holds "
                    f"term={hs.term} voted_for={hs.voted_for}",
                )
        elif (
            isinstance(m, AppendEntriesResponse) and not m.reject and m.index > durable.last_index()
        ):
            raise Violation(
                "Persist before send",
                f"{self.id} acknowledges index {m.index} but its disk holds only up to "
                f"{durable.last_index()}",
            )
        pre = isinstance(m, RequestVote | RequestVoteResponse) and m.pre_vote
        if not pre and m.term > durable.hard_state.term:
            raise Violation(
                "Persist before send",
                f"{self.id} sends a term-{m.term} message, its disk holds term "
                f"{durable.hard_state.term}: {m.describe()}",
            )

    def _apply(self, e: Entry, term: int) -> None:
        kv = self.kv
        if e.index != kv.index + 1:
            raise Violation(
                "State Machine Safety",
                f"{self.id} asked to apply {e.index}/{e.term} after {kv.index} (gap or repeat)",
            )
        if self.view.term_at(e.index) != e.term:
            raise Violation(
                "Persist before apply",
                f"{self.id} applies {e.index}/{e.term} but its log holds "
                f"{self.view.term_at(e.index)} there",
            )
        try:
            kv.apply(e)
        except ShadowMismatch as err:
            raise Violation("KV state machine agrees with the model", f"{self.id}: {err}") from err
        self.stats["applied"] += 1
        self.sim.history.applied(self.id, term, e, kv.digest)
        p = self.proposals.pop(e.index, None)
        if p is not None:
            if e.term == p.term:
                if e.data != p.data:
                    raise Violation(
                        "State Machine Safety",
                        f"{self.id}: proposal {p.op.value!r} got index {e.index} in term {e.term}, "
                        f"but {e.index}/{e.term} holds {e.data!r}",
                    )
                self.sim.history.write_acked(p.op, e.index, e.term)
                self.sim.write_done(p.op)
                self.sim.counters["write acked"] += 1
                self.sim.trace(self.id, "client", f"ack {p.op.key}={p.op.value} @{e.index}")
            else:
                self.sim.trace(self.id, "client", f"lost {p.op.key}={p.op.value} @{e.index}")
                self.sim.outcome_unknown(p.op)
                self.sim.counters["proposal overwritten"] += 1

    def _serve_ready_reads(self) -> None:
        still = []
        for pr in self.waiting_reads:
            if pr.index is not None and self.kv.index >= pr.index:
                self._serve(pr)
            else:
                still.append(pr)
        self.waiting_reads = still

    def _serve(self, pr: _PendingRead) -> None:
        hist = self.sim.history
        value = self.kv.kv.get(pr.key)
        op = ReadOp(
            key=pr.key,
            start=pr.start,
            end=hist.tick_clock(),
            value=value,
            node=self.id,
            read_index=pr.index or 0,
            served_at=self.kv.index,
            request_id=pr.request_id,
        )
        self.sim.trace(self.id, "client", f"read {pr.key} -> {value} (index {pr.index})")
        self.sim.counters["read served"] += 1
        hist.read_completed(op)

    def _maybe_compact(self) -> None:
        raft = self.raft
        if raft is None or not self.up or not self.snapshot_every:
            return
        if self.kv.index - self.view.offset < self.snapshot_every:
            return
        data = self.kv.serialize()
        conf = raft.membership_at(self.kv.index)
        meta = SnapshotMeta(
            index=self.kv.index, term=self.kv.term, members=conf.voters, membership=conf
        )
        snap = Snapshot(meta=meta, data=data)
        self.disk.save_snapshot(snap, received=False)
        self.view.install_snapshot(snap, keep_suffix=True)
        raft.compact(self.kv.index, data)
        self.stats["compactions"] += 1
        self.sim.counters["compaction"] += 1
        self.sim.trace(self.id, "compact", f"snapshot at {meta.index}/{meta.term}")

    # -- observation -------------------------------------------------------------------------
    def observe(self) -> Status | None:
        """Per-step checks on this node's reported state."""
        raft = self.raft
        if raft is None or not self.up:
            return None
        st = raft.status()
        if st.term < self._last_term:
            raise Violation("Durability", f"{self.id} term went back {self._last_term}->{st.term}")
        self._last_term = st.term
        if st.commit_index < self._last_commit:
            raise Violation(
                "State Machine Safety",
                f"{self.id} commit index went back {self._last_commit} -> {st.commit_index}",
            )
        self._last_commit = st.commit_index
        if st.applied_index != self.kv.index:
            raise Violation(
                "Driver/core agreement",
                f"{self.id} status says applied_index={st.applied_index}, the driver applied "
                f"{self.kv.index}",
            )
        if st.commit_index > st.last_log_index:
            raise Violation(
                "Log Matching",
                f"{self.id} commit {st.commit_index} beyond its last index {st.last_log_index}",
            )
        if self._conf_dirty or st.config_index != self._seen_conf_index:
            self._check_conf(st)
        if st.role is Role.CANDIDATE:
            self.sim.history.candidates.setdefault(st.term, set()).add(self.id)
        if st.role is Role.LEADER and self._leader_term == st.term:
            if st.commit_index > self._leader_commit and self.sim.rule_checks:
                # Raft §5.4.2 (Figure 8): a leader commits by counting replicas only an entry of
                # its own term; its commit index therefore always lands on one.
                at = self.view.term_at(st.commit_index)
                if at != st.term:
                    raise Violation(
                        "Leader commit rule (Raft §5.4.2)",
                        f"{self.id}, leader of term {st.term}, advanced its commit index to "
                        f"{st.commit_index}, an entry of term {at}",
                    )
                self._leader_commit = st.commit_index
        elif st.role is Role.LEADER:
            self._leader_commit = st.commit_index
            view = self.view
            self.sim.history.leader_seen(
                self.id,
                st.term,
                view.offset,
                view.offset_term,
                [e.term for e in view.entries],
                self.sim.now,
            )
            self._leader_term = st.term
            self.sim.trace(self.id, "leader", f"term {st.term} last={view.last_index()}")
            self.sim.counters["leader elected"] += 1
        return st

    def _check_conf(self, st: Status) -> None:
        """Thesis §4.1: a node uses the newest configuration in its log, committed or not; one
        change at a time (at most one uncommitted CONFIG entry); learners never lead."""
        self._conf_dirty = False
        self._seen_conf_index = st.config_index
        view = self.view
        # committed somewhere: the node's own commit index or any node's applied index
        committed = max(st.commit_index, self.sim.history.max_committed)
        want, uncommitted = None, 0
        for e in reversed(view.entries):
            if e.kind is EntryKind.CONFIG:
                if want is None:
                    want = e.index
                if e.index > committed:
                    uncommitted += 1
                else:
                    break
        if want is None:
            meta = view.snapshot.meta if view.snapshot is not None else None
            want = meta.membership.index if meta is not None and meta.membership else 0
        if self.sim.rule_checks and st.config_index != want:
            raise Violation(
                "Configuration follows the log (thesis §4.1)",
                f"{self.id} uses the configuration of index {st.config_index}, but the newest "
                f"one in its log is at {want} (commit {st.commit_index})",
            )
        if self.sim.rule_checks and uncommitted > 1:
            raise Violation(
                "One membership change at a time (thesis §4.1)",
                f"{self.id} holds {uncommitted} uncommitted configuration entries",
            )
        conf = st.membership
        removed_leader = st.role is Role.LEADER and conf is not None and self.id not in conf.voters
        if removed_leader and st.config_index <= st.commit_index:
            raise Violation("Only voters lead", f"{self.id} leads term {st.term}, not a voter")


def _restore_kv(data: bytes) -> KVState:
    try:
        return KVState.deserialize(data)
    except ShadowMismatch as err:
        raise Violation("KV state machine agrees with the model", str(err)) from err


def _describe_image(img: DiskImage) -> str:
    hs = img.hard_state
    return (
        f"term={hs.term} vote={hs.voted_for} commit={hs.commit} snapshot={img.offset}/"
        f"{img.offset_term} last={img.last_index()}"
    )


class Simulation:
    """The simulated world: nodes, network, clock, clients and the fault schedule."""

    def __init__(
        self,
        seed: int,
        params: SimParams | None = None,
        *,
        rng: random.Random | None = None,
        replay: str | None = None,
        record_trace: bool = False,
    ) -> None:
        self.seed = seed
        self.params = params if params is not None else SimParams()
        self.rng = rng if rng is not None else random.Random(seed)
        self.replay = replay or f"RAFTKV_SIM_SEED={seed} pytest tests/unit/sim -k replay"
        self.ids = tuple(f"raft-{i}" for i in range(self.params.n))
        self.now = 0
        self._events: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.steps = 0
        self.net = SimNetwork(self.rng, self.ids, self.params.rates)
        self.history = History()
        self.touched: set[str] = set()
        self._trace: deque[tuple[int, str, str, object]] = deque(maxlen=self.params.trace_len)
        self._trace_file = os.environ.get("RAFTKV_SIM_TRACE")
        self.trace_lines: list[str] | None = [] if (self._trace_file or record_trace) else None
        self.nodes = {i: SimNode(self, i) for i in self.ids}
        self.dead: set[str] = set()  # stopped for good (a lost machine, replaced by a new id)
        self._next_id = self.params.n
        self._value_seq = 0
        self._client_seq: dict[str, int] = {}
        self._client_op: dict[str, WriteOp] = {}  # each client's one outstanding write
        self._write_data: dict[str, bytes] = {}
        self._attempts: dict[str, int] = {}
        self._read_seq = 0
        self.keys = tuple(f"k{i}" for i in range(self.params.keys))
        self.ops = {"proposed": 0, "rejected": 0, "reads": 0}
        self.counters: Counter[str] = Counter()  # what happened in the run (coverage)
        self._failed: SimFailure | None = None
        self._holds: dict[int, Callable[[Message], bool]] = {}
        # Checks of HOW the core and driver work (the Figure 8 commit rule, persist before send)
        # on top of the safety properties; mutation tests turn them off to show that the
        # properties alone catch the bug too.
        self.rule_checks = True
        for node in self.nodes.values():
            self.guard(node.start)

    # -- events ------------------------------------------------------------------------------
    def schedule(self, delay: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (self.now + max(0, delay), self._seq, fn, args))

    def send(self, msg: Message) -> None:
        delays = self.net.plan(msg)
        if not delays:
            self.trace(msg.src, "drop", msg)
            return
        if self.params.codec:
            msg = decode_message(encode_message(msg))
        for d in delays:
            self.schedule(d, self._deliver, msg)

    def _deliver(self, msg: Message) -> None:
        if not self.net.deliverable(msg):
            self.trace(msg.dst, "lost", msg)
            return
        node = self.nodes.get(msg.dst)
        if node is not None:
            self.counters["recv " + type(msg).__name__] += 1
            node.deliver(msg)

    def step(self) -> bool:
        """Run one event and check every property. False when nothing is left to run."""
        if not self._events:
            return False
        t, _, fn, args = heapq.heappop(self._events)
        self.now = t
        self.steps += 1
        self.guard(fn, *args)
        return True

    def guard(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one input to the world, then check every property; failures become SimFailure."""
        try:
            result = fn(*args)
            self._check_step()
        except SimFailure:
            raise
        except Exception as err:
            raise self._wrap(err) from err
        return result

    def run_for(self, duration: int) -> None:
        self.run_until(lambda: False, duration)

    def run_until(self, pred: Callable[[], bool], timeout: int) -> bool:
        """Run events until ``pred()`` holds (True) or ``timeout`` virtual time passed (False)."""
        deadline = self.now + timeout
        while self._events and self._events[0][0] <= deadline:
            self.step()
            if pred():
                return True
        self.now = max(self.now, deadline)
        return pred()

    def ticks(self, n: float) -> int:
        """``n`` ticks in virtual time units."""
        return round(n * self.params.tick_ms)

    def _check_step(self) -> None:
        touched = self.touched
        if touched:
            self.touched = set()
            for node_id in sorted(touched):
                self.nodes[node_id].observe()

    def fail(self, prop: str, detail: str) -> SimFailure:
        return self._wrap(Violation(prop, detail))

    def _wrap(self, err: Exception) -> SimFailure:
        if isinstance(err, SimFailure):
            return err
        if isinstance(err, Violation):
            prop, detail = err.prop, err.detail
        else:
            prop, detail = "no crash in the core or harness", f"{type(err).__name__}: {err}"
        failure = SimFailure(self.seed, prop, detail, self.trace_tail(), self.replay)
        self._failed = failure
        self._dump_trace()
        return failure

    # -- trace -------------------------------------------------------------------------------
    def trace(self, node: str, kind: str, obj: object) -> None:
        item = (self.now, node, kind, obj)
        self._trace.append(item)
        if self.trace_lines is not None:
            self.trace_lines.append(_format_trace(item))

    def trace_tail(self, n: int = 60) -> list[str]:
        items = list(self._trace)[-n:]
        return [_format_trace(i) for i in items]

    def _dump_trace(self) -> None:
        if self._trace_file and self.trace_lines is not None:
            with open(self._trace_file, "w", encoding="utf-8") as fh:
                fh.write("\n".join(self.trace_lines) + "\n")

    # -- cluster-level queries ---------------------------------------------------------------
    def term_of(self, node_id: str) -> int:
        """The current term of ``node_id`` (-1 while it is down)."""
        raft = self.nodes[node_id].raft
        return raft.status().term if raft is not None else -1

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.up]

    def statuses(self) -> dict[str, Status]:
        return {n.id: n.raft.status() for n in self.up_nodes() if n.raft is not None}

    def leaders(self) -> list[SimNode]:
        """Nodes that currently believe they lead, highest term first."""
        out = []
        for n in self.up_nodes():
            assert n.raft is not None
            if n.raft.status().role is Role.LEADER:
                out.append(n)
        out.sort(key=lambda n: -n.raft.status().term if n.raft else 0)
        return out

    def stable_leader(self) -> SimNode | None:
        """The leader every member of its configuration follows (same term), or None. Nodes
        outside that configuration (removed, or added by an entry that was overwritten) and dead
        ones do not count."""
        sts = self.statuses()
        leaders = [nid for nid, st in sts.items() if st.role is Role.LEADER]
        if not leaders:
            return None
        lid = max(leaders, key=lambda nid: sts[nid].term)
        need = self.members_of(sts[lid].membership)
        if any(nid not in sts for nid in need):
            return None
        if {sts[nid].leader for nid in need} != {lid} or {sts[nid].term for nid in need} != {
            sts[lid].term
        }:
            return None
        return self.nodes[lid]

    def members_of(self, conf: Membership | None) -> list[str]:
        """The live members (voters and learners) of ``conf``: the nodes that must converge."""
        ids = conf.members if conf is not None else self.ids
        return [nid for nid in ids if nid in self.nodes and nid not in self.dead]

    def add_node(self, flags: tuple[str, ...]) -> SimNode:
        """A new machine: fresh disk, NEW id, started with ``flags`` as its peers (joining)."""
        node_id = f"raft-{self._next_id}"
        self._next_id += 1
        node = SimNode(self, node_id, flags)
        self.nodes[node_id] = node
        self.ids = (*self.ids, node_id)
        self.net.nodes = self.ids
        self.counters["node added"] += 1
        self.trace(node_id, "start", f"new node, flags peers={','.join(flags)}")
        node.start()
        return node

    def kill_for_good(self, node_id: str) -> None:
        """The machine is gone: crash it and never restart it."""
        self.dead.add(node_id)
        self.guard(self.nodes[node_id].crash, "lost")

    # -- clients -----------------------------------------------------------------------------
    def propose(self, node: SimNode, key: str | None = None) -> WriteOp | None:
        """A client write sent to ``node``; returns the operation if the node took it."""
        return self.guard(self._propose, node, key)

    def _propose(self, node: SimNode, key: str | None) -> WriteOp | None:
        if not node.up or node.raft is None:
            return None
        self._value_seq += 1
        key = key if key is not None else self.rng.choice(self.keys)
        value = f"w{self._value_seq}"
        # Clients are sequential, like real ones: one outstanding write each. A client picked
        # while busy gives up on its previous write (no more retries of it), so a session's
        # sequence numbers are applied in order and never fall out of the dedup window.
        clients = [f"c{i}" for i in range(self.params.clients)]
        idle = [c for c in clients if c not in self._client_op]
        client = self.rng.choice(idle or clients)
        self._client_op.pop(client, None)
        self._client_seq[client] = seq = self._client_seq.get(client, 0) + 1
        data = encode_put(key, value, client, seq)
        op = WriteOp(key=key, value=value, invoke=self.history.tick_clock())
        self.history.write_invoked(op)  # before submitting: a 1-node cluster applies at once
        self._write_data[op.value] = data
        if not self._submit(node, op, data):
            del self.history.writes[op.value], self._write_data[op.value]
            return None
        if op.complete is None:
            self._client_op[client] = op
        return op

    def write_done(self, op: WriteOp) -> None:
        """``op`` was acknowledged: its client may send the next write."""
        for client, current in list(self._client_op.items()):
            if current is op:
                del self._client_op[client]

    def _submit(self, node: SimNode, op: WriteOp, data: bytes) -> bool:
        assert node.raft is not None
        try:
            index = node.raft.propose(data)
        except (NotLeader, ProposalDropped) as err:
            self.ops["rejected"] += 1
            self.trace(node.id, "client", f"propose {op.key}={op.value} refused: {err}")
            return False
        term = node.raft.status().term
        self.ops["proposed"] += 1
        node.proposals[index] = _Proposal(op, index, term, data)
        self.trace(node.id, "client", f"propose {op.key}={op.value} -> {index}/{term}")
        node.drive()
        return True

    def outcome_unknown(self, op: WriteOp) -> None:
        """The client never learned what became of ``op``: sometimes it retries, with the same
        session (client id, seq), which the state machine deduplicates (exactly-once)."""
        if op.complete is None and self.rng.random() < self.params.retry:
            self.schedule(self.rng.randint(1, self.ticks(3)), self._retry, op)

    def _retry(self, op: WriteOp) -> None:
        attempts = self._attempts[op.value] = self._attempts.get(op.value, 1) + 1
        node = self.client_target()
        if not self.params.retry or op.complete is not None or attempts > 4:
            return
        if op not in self._client_op.values():
            return  # the client gave up on it
        if node is None or node.raft is None:
            return
        self.counters["write retried"] += 1
        self._submit(node, op, self._write_data[op.value])

    def read(self, node: SimNode, key: str | None = None) -> str | None:
        """A client ReadIndex read sent to ``node``; returns the request id if it was taken."""
        return self.guard(self._read, node, key)

    def _read(self, node: SimNode, key: str | None) -> str | None:
        if not node.up or node.raft is None:
            return None
        self._read_seq += 1
        rid = f"r{self._read_seq}"
        key = key if key is not None else self.rng.choice(self.keys)
        pr = _PendingRead(rid, key, self.history.tick_clock())
        node.reads[rid] = pr
        try:
            node.raft.read_index(rid)
        except NotLeader:
            del node.reads[rid]
            return None
        self.ops["reads"] += 1
        self.trace(node.id, "client", f"read {key} ({rid})")
        node.drive()
        return rid

    def client_target(self) -> SimNode | None:
        up = self.up_nodes()
        if not up:
            return None
        leaders = self.leaders()
        if leaders and self.rng.random() < 0.85:
            return leaders[0] if self.rng.random() < 0.8 else self.rng.choice(leaders)
        return self.rng.choice(up)

    # -- scenario helpers --------------------------------------------------------------------
    def wait_for(self, pred: Callable[[], bool], what: str, timeout_ticks: float) -> None:
        """Run until ``pred()``; a scenario that never gets there fails with ``what``."""
        if not self.run_until(pred, self.ticks(timeout_ticks)):
            raise self.fail("Scenario", f"timed out after {timeout_ticks} ticks waiting for {what}")

    def leader_among(self, ids: Iterable[str]) -> SimNode | None:
        """The highest-term node of ``ids`` that believes it leads and has committed in its term."""
        best = None
        for node_id in ids:
            node = self.nodes[node_id]
            if node.raft is None:
                continue
            st = node.raft.status()
            committed_in_term = node.view.term_at(st.commit_index) == st.term
            if st.role is Role.LEADER and committed_in_term and (best is None or st.term > best[0]):
                best = (st.term, node)
        return best[1] if best else None

    def settled_leader(self) -> SimNode | None:
        """A leader every node follows, which has committed an entry of its term."""
        leader = self.stable_leader()
        if leader is None:
            return None
        return leader if self.leader_among([leader.id]) is leader else None

    def campaign(self, node_id: str) -> None:
        """Make ``node_id``'s election timer fire now (``RaftNode.campaign()``)."""
        node = self.nodes[node_id]
        raft = node.raft
        assert raft is not None
        self.guard(raft.campaign)
        self.guard(node.drive)

    def transfer(self, node_id: str, target: str | None) -> str:
        """``transfer_leadership(target)`` on ``node_id``; returns the chosen target."""
        node = self.nodes[node_id]
        raft = node.raft
        assert raft is not None
        chosen = self.guard(raft.transfer_leadership, target)
        self.guard(node.drive)
        return chosen

    def hold(self, pred: Callable[[Message], bool]) -> list[Message]:
        """Capture (instead of delivering) every message matching ``pred`` until ``unhold``."""
        held: list[Message] = []

        def capture(m: Message) -> bool:
            if pred(m):
                held.append(m)
                return True
            return False

        self.net.add_filter(capture)
        self._holds[id(held)] = capture
        return held

    def unhold(self, held: list[Message], *, deliver: bool = True) -> None:
        """Stop capturing; deliver what was held (in order, one time unit apart) or drop it."""
        self.net.remove_filter(self._holds.pop(id(held)))
        if deliver:
            for i, m in enumerate(held):
                self.schedule(i + 1, self._deliver, m)
        held.clear()

    # -- faults (used by the fault schedule and by scenarios) ----------------------------------
    def crash(self, node_id: str) -> None:
        self.guard(self.nodes[node_id].crash)

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if not node.up and node_id not in self.dead:
            self.guard(node.start)

    def heal(self) -> None:
        self.net.heal()
        self.trace("-", "fault", "network healed")


def _format_trace(item: tuple[int, str, str, object]) -> str:
    t, node, kind, obj = item
    if isinstance(obj, str):
        text = obj
    elif hasattr(obj, "describe"):
        text = obj.describe()
    else:
        text = repr(obj)
    return f"t={t:<7} {node:<7} {kind:<8} {text}"
