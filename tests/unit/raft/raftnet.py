"""raftnet.py — a tiny synchronous test network for RaftNode unit tests (etcd raft_test.go style).

Every node has an in-memory "disk" (hard state, entries, snapshot) and a driver loop that follows
the Ready contract: persist snapshot, persist hard state + entries, queue messages, apply committed
entries, collect read states, then advance. Messages go to one FIFO queue and are delivered by
``deliver()`` / ``stabilize()``, unless a filter drops them: ``cut(a, b)``, ``isolate(x)``,
``drop_types(...)``, ``recover()``. No randomness except each node's own seeded rng.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from raftkv.raft import (
    Config,
    Entry,
    EntryKind,
    HardState,
    Message,
    RaftNode,
    ReadState,
    Ready,
    RestoredState,
    Role,
    Snapshot,
)


@dataclass
class Disk:
    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def save(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state
        if rd.entries:
            first = rd.entries[0].index
            base = self.snapshot.meta.index if self.snapshot else 0
            del self.entries[first - base - 1 :]
            self.entries.extend(rd.entries)

    def compact(self, snap: Snapshot) -> None:
        base = self.snapshot.meta.index if self.snapshot else 0
        del self.entries[: snap.meta.index - base]
        self.snapshot = snap


@dataclass
class Peer:
    node: RaftNode
    cfg: Config
    disk: Disk = field(default_factory=Disk)
    applied: list[Entry] = field(default_factory=list)  # NORMAL entries applied, in order
    applied_index: int = 0
    read_states: list[ReadState] = field(default_factory=list)
    readies: list[Ready] = field(default_factory=list)
    restored_snapshots: list[Snapshot] = field(default_factory=list)


def make_config(node_id: str, ids: Iterable[str], **kw: object) -> Config:
    base: dict[str, object] = {"election_tick": 10, "heartbeat_tick": 1}
    base.update(kw)
    return Config(id=node_id, peers=tuple(ids), **base)  # type: ignore[arg-type]


class Network:
    def __init__(
        self,
        n: int = 3,
        seed: int = 1,
        logs: dict[str, list[int]] | None = None,
        **cfg: object,
    ) -> None:
        """``logs``: optional starting log per node, as a list of entry terms (index 1, 2, ...);
        the node's persisted term is the last of them and its disk holds them."""
        self.ids = [f"n{i}" for i in range(1, n + 1)]
        self.peers: dict[str, Peer] = {}
        self.queue: list[Message] = []
        self.filters: list[Callable[[Message], bool]] = []  # True = drop
        self.delivered: list[Message] = []
        for i, nid in enumerate(self.ids):
            c = make_config(nid, self.ids, **cfg)
            terms = (logs or {}).get(nid, [])
            disk = Disk(
                hard_state=HardState(term=max(terms, default=0)),
                entries=[Entry(index=j, term=t) for j, t in enumerate(terms, start=1)],
            )
            restored = RestoredState(hard_state=disk.hard_state, entries=list(disk.entries))
            node = RaftNode(c, random.Random(seed * 1000 + i), restored)
            self.peers[nid] = Peer(node, c, disk)

    # ---- access
    def node(self, nid: str) -> RaftNode:
        return self.peers[nid].node

    def terms(self, nid: str) -> list[int]:
        """The terms of the node's in-memory log, index 1 upward (after any snapshot)."""
        return [e.term for e in self.node(nid).log_entries()]

    def leader(self) -> str | None:
        leaders = [i for i in self.ids if self.node(i).role is Role.LEADER]
        top = max((self.node(i).term for i in leaders), default=0)
        best = [i for i in leaders if self.node(i).term == top]
        return best[0] if best else None

    # ---- driver
    def process(self, nid: str) -> None:
        """Run the Ready loop of one node until it has nothing to do."""
        p = self.peers[nid]
        while p.node.has_ready():
            rd = p.node.ready()
            p.readies.append(rd)
            p.disk.save(rd)
            if rd.snapshot is not None:
                p.restored_snapshots.append(rd.snapshot)
                p.applied_index = rd.snapshot.meta.index
            self.queue.extend(rd.messages)
            for e in rd.committed_entries:
                assert e.index == p.applied_index + 1, (nid, e.index, p.applied_index)
                p.applied_index = e.index
                if e.kind is EntryKind.NORMAL:
                    p.applied.append(e)
            p.read_states.extend(rd.read_states)
            p.node.advance(rd)

    def process_all(self) -> None:
        for nid in self.ids:
            self.process(nid)

    def dropped(self, m: Message) -> bool:
        return any(f(m) for f in self.filters)

    def deliver(self) -> int:
        """Deliver every queued message once (those they cause wait for the next round)."""
        batch, self.queue = self.queue, []
        n = 0
        for m in batch:
            if self.dropped(m):
                continue
            self.delivered.append(m)
            self.node(m.dst).step(m)
            n += 1
        return n

    def stabilize(self, max_rounds: int = 1000) -> None:
        for _ in range(max_rounds):
            self.process_all()
            if not self.queue:
                return
            self.deliver()
        raise AssertionError("network did not stabilize")

    def tick(self, nid: str | None = None, n: int = 1) -> None:
        for _ in range(n):
            for i in [nid] if nid else self.ids:
                self.node(i).tick()

    def tick_all(self, n: int = 1) -> None:
        """Tick every node n times, stabilizing after each tick."""
        for _ in range(n):
            self.tick()
            self.stabilize()

    def elect(self, nid: str) -> None:
        """Make ``nid`` campaign and stabilize; it must win."""
        self.node(nid).campaign()
        self.stabilize()
        assert self.node(nid).role is Role.LEADER, self.node(nid).status()

    # ---- faults
    def cut(self, a: str, b: str) -> None:
        self.filters.append(lambda m: {m.src, m.dst} == {a, b})

    def isolate(self, nid: str) -> None:
        self.filters.append(lambda m: nid in (m.src, m.dst))

    def drop_types(self, *types: type) -> None:
        self.filters.append(lambda m: isinstance(m, types))

    def recover(self) -> None:
        self.filters = []

    # ---- crash/restart
    def restart(self, nid: str, seed: int = 99) -> None:
        """Rebuild the node from its disk (losing everything in memory)."""
        p = self.peers[nid]
        d = p.disk
        restored = RestoredState(
            hard_state=d.hard_state, snapshot=d.snapshot, entries=list(d.entries)
        )
        p.node = RaftNode(p.cfg, random.Random(seed), restored)
        p.applied = []
        p.applied_index = d.snapshot.meta.index if d.snapshot else 0
        self.queue = [m for m in self.queue if m.dst != nid and m.src != nid]

    def add_node(self, nid: str, peers: Iterable[str] | None = None, seed: int = 77) -> None:
        """A brand-new node with an empty disk, started with ``peers`` (default: the current ids)
        as its flags: a *joining* node when ``nid`` is not among them."""
        base = next(iter(self.peers.values())).cfg
        c = make_config(
            nid,
            tuple(peers if peers is not None else self.ids),
            election_tick=base.election_tick,
            heartbeat_tick=base.heartbeat_tick,
            pre_vote=base.pre_vote,
            check_quorum=base.check_quorum,
        )
        self.ids.append(nid)
        self.peers[nid] = Peer(RaftNode(c, random.Random(seed), RestoredState()), c)
