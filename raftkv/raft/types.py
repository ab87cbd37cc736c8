"""types.py — the plain data every layer of raftkv shares: log entries, hard state, snapshots.

These are the values the pure Raft core hands to its driver (to persist, to apply) and that the
storage layer writes to disk. They carry no behaviour and no I/O. All are immutable.

Invariants (checked by the core, relied on by storage):
- ``Entry.index`` >= 1 and ``Entry.term`` >= 1; within a log, indexes are contiguous.
- ``HardState.commit`` never decreases for a given node; ``term`` never decreases.
- ``SnapshotMeta.index``/``term`` name the last log entry the snapshot replaces.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "Entry",
    "EntryKind",
    "HardState",
    "Index",
    "Membership",
    "NodeId",
    "Snapshot",
    "SnapshotMeta",
    "Term",
]

NodeId = str
Term = int
Index = int


class EntryKind(enum.IntEnum):
    """What a log entry carries."""

    NORMAL = 0  # an opaque client command (``data``), applied by the state machine
    NOOP = 1  # appended by a new leader at the start of its term (Raft §5.4.2, thesis §6.4)
    CONFIG = 2  # a membership change (membership.py); ``data`` is its JSON; a no-op for the KV


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One Raft log entry."""

    index: Index
    term: Term
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """What a node must persist before it sends any message that depends on it (Raft Figure 2).

    ``voted_for`` is the candidate granted a vote in ``term`` (None if none). ``commit`` is
    persisted as a hint only: it may lag, and is never trusted beyond the persisted log.
    """

    term: Term = 0
    voted_for: NodeId | None = None
    commit: Index = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """A cluster configuration (thesis §4): who votes, who only replicates, and where they live.

    ``voters`` elect and count toward commit and ReadIndex quorums; ``learners`` receive entries and
    snapshots but never vote or campaign; ``removed`` are ids removed from the cluster (they may
    never come back: a replacement takes a new id). ``urls`` maps members to their base URL (opaque
    to the core; the node's transport uses it). ``index`` is the log index of the CONFIG entry that
    set it; 0 means "bootstrapped from flags, not yet written to the log".
    """

    voters: tuple[NodeId, ...]
    learners: tuple[NodeId, ...] = ()
    urls: tuple[tuple[NodeId, str], ...] = ()
    removed: tuple[NodeId, ...] = ()
    index: Index = 0

    @property
    def members(self) -> tuple[NodeId, ...]:
        return self.voters + self.learners

    def url(self, node_id: NodeId) -> str | None:
        for nid, url in self.urls:
            if nid == node_id:
                return url
        return None

    def role_of(self, node_id: NodeId) -> str:
        """ "voter", "learner", "removed" or "none" (never a member)."""
        if node_id in self.voters:
            return "voter"
        if node_id in self.learners:
            return "learner"
        if node_id in self.removed:
            return "removed"
        return "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotMeta:
    """Describes a snapshot: the last entry it covers and the membership at that point.

    ``members`` are the voters (kept for the older format); ``membership`` is the whole
    configuration (None in snapshots written before membership changes existed: then ``members``
    are the voters and the configuration was never logged).
    """

    index: Index
    term: Term
    members: tuple[NodeId, ...] = field(default_factory=tuple)
    membership: Membership | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A state machine snapshot: ``data`` is opaque to Raft (the KV layer encodes it)."""

    meta: SnapshotMeta
    data: bytes = b""
