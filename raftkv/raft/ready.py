"""ready.py — what the core hands its driver: Ready (the work batch), ReadState, Role, Status
(and CampaignKind, what ``campaign(kind)`` starts).

The driver contract (etcd doc.go's four steps), for every ``rd = node.ready()``, IN THIS ORDER:

1. ``rd.snapshot``: persist it and restore the state machine from it (a follower that fell far
   behind got it from the leader). The stored log before AND after it is discarded: the node's log
   restarts at ``snapshot.meta.index + 1``.
2. ``rd.hard_state`` and ``rd.entries``: when ``rd.must_sync``, persist durably, together (one
   fsync); otherwise saving ``hard_state`` (its commit index moved) may wait for the next one. If
   ``entries[0].index`` <= the last stored index, the stored suffix from there is replaced.
   PERSIST BEFORE SEND: no message of ``rd`` may leave before step 2 is durable (a vote or an
   append acknowledgement promises durability).
3. ``rd.messages``: send them (best effort; Raft tolerates loss).
4. ``rd.committed_entries``: apply in order (NOOP entries are applied as no-ops).
5. ``rd.read_states``: ``ReadState(request_id, index)``: serve that read once applied >= index.
6. ``rd.soft_state``: (role, leader) when it changed: fail proposals/reads waiting on a lost
   leadership.

then ``node.advance(rd)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from raftkv.raft.messages import Message, describe_entries
from raftkv.raft.types import Entry, HardState, Index, Membership, NodeId, Snapshot, Term

__all__ = ["CampaignKind", "ReadState", "Ready", "Role", "Status"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class CampaignKind(enum.Enum):
    """What ``RaftNode.campaign(kind)`` starts (etcd's CampaignType)."""

    PRE_ELECTION = "pre-election"  # thesis §9.6: ask whether we could win, term unchanged
    ELECTION = "election"  # Raft §5.2: a new term, ask for votes
    TRANSFER = "transfer"  # thesis §3.10: an election a TimeoutNow asked for


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read ``request_id`` may be served once the state machine applied ``index``."""

    request_id: str
    index: Index


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    snapshot: Snapshot | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    soft_state: tuple[Role, NodeId | None] | None = None
    # step 2 needs a durable (fsynced) save: new entries, or a new term or vote (etcd's MustSync).
    # A hard state whose commit index alone moved is not worth an fsync: the stored commit is a
    # hint (it may lag; a restarted node learns the commit index from the leader again).
    must_sync: bool = False

    def describe(self) -> str:
        parts: list[str] = []
        if self.soft_state is not None:
            parts.append(f"soft={self.soft_state[0].value}/{self.soft_state[1]}")
        if self.snapshot is not None:
            parts.append(f"snapshot={self.snapshot.meta.index}/{self.snapshot.meta.term}")
        if self.hard_state is not None:
            hs = self.hard_state
            parts.append(f"hs=term:{hs.term},vote:{hs.voted_for},commit:{hs.commit}")
        if self.entries:
            parts.append(f"entries={describe_entries(self.entries)}")
        if self.messages:
            parts.append(f"msgs={len(self.messages)}")
        if self.committed_entries:
            parts.append(f"committed={describe_entries(self.committed_entries)}")
        if self.read_states:
            reads = ",".join(f"{r.request_id}@{r.index}" for r in self.read_states)
            parts.append(f"reads={reads}")
        return "Ready(" + " ".join(parts) + ")"


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    id: NodeId
    role: Role
    term: Term
    leader: NodeId | None
    commit_index: Index
    applied_index: Index
    last_log_index: Index
    snapshot_index: Index
    members: tuple[NodeId, ...]  # the voters
    progress: dict[NodeId, Index] = field(default_factory=dict)  # leader only: member -> match
    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()
    config_index: Index = 0  # index of the CONFIG entry in effect (0: from flags, not logged)
    membership: Membership | None = None  # the whole configuration in effect
