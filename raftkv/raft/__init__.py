"""raftkv.raft — the pure Raft consensus core (no I/O).

See docs/contracts.md §1 and docs/raft-core.md.

Modules: node.py (RaftNode), ready.py (Ready + driver contract), messages.py + codec.py (wire),
wellformed.py (the one AppendEntries well-formedness rule, shared by codec and node),
membership.py (configuration changes), log.py (in-memory log), progress.py (flow control),
quorum.py, readonly.py (ReadIndex), config.py (Config, RestoredState), errors.py (exception
tree), types.py (shared values).
"""

from raftkv.raft.codec import decode_message, encode_message
from raftkv.raft.config import Config, RestoredState
from raftkv.raft.errors import (
    ConfChangeRefused,
    ConfigError,
    InvariantViolation,
    MessageDecodeError,
    NotLeader,
    ProposalDropped,
    RaftError,
)
from raftkv.raft.membership import ChangeOp, ConfChange
from raftkv.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from raftkv.raft.node import RaftNode
from raftkv.raft.ready import CampaignKind, ReadState, Ready, Role, Status
from raftkv.raft.types import Entry, EntryKind, HardState, Membership, Snapshot, SnapshotMeta

__all__ = [
    "AppendEntries",
    "AppendEntriesResponse",
    "CampaignKind",
    "ChangeOp",
    "ConfChange",
    "ConfChangeRefused",
    "Config",
    "ConfigError",
    "Entry",
    "EntryKind",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "InvariantViolation",
    "Membership",
    "Message",
    "MessageDecodeError",
    "NotLeader",
    "ProposalDropped",
    "RaftError",
    "RaftNode",
    "ReadIndex",
    "ReadIndexResponse",
    "ReadState",
    "Ready",
    "RequestVote",
    "RequestVoteResponse",
    "RestoredState",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "Status",
    "TimeoutNow",
    "decode_message",
    "encode_message",
]
