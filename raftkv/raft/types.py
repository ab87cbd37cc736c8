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
class SnapshotMeta:
    """Describes a snapshot: the last entry it covers and the membership at that point."""

    index: Index
    term: Term
    members: tuple[NodeId, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A state machine snapshot: ``data`` is opaque to Raft (the KV layer encodes it)."""

    meta: SnapshotMeta
    data: bytes = b""
