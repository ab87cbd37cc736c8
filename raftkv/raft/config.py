"""config.py — what a RaftNode is built from: its Config and the state restored from storage.

``Config.validate()`` rejects nonsense with ConfigError (ids, tick relations, limits).
``RestoredState`` is what the driver read back from durable storage: the hard state, the latest
snapshot (its meta, or the whole ``Snapshot`` so the core can send it to lagging followers) and the
entries after it. A fresh node passes ``RestoredState()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftkv.raft.errors import ConfigError
from raftkv.raft.types import Entry, HardState, NodeId, Snapshot, SnapshotMeta

__all__ = ["Config", "RestoredState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    id: NodeId
    # the voters a brand-new cluster starts with (self included). Only used while the log holds no
    # configuration (no CONFIG entry, no snapshot with one): from then on the log decides. A node
    # whose id is not here starts as a *joining* node: it never campaigns until the cluster adds it.
    peers: tuple[NodeId, ...]
    # (id, base URL) of the peers, written into the bootstrap configuration entry; opaque here
    peer_urls: tuple[tuple[NodeId, str], ...] = ()
    # the randomized election timeout is drawn from [election_tick, 2*election_tick)
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight_msgs: int = 64
    max_entries_per_msg: int = 256
    max_bytes_per_msg: int = 1 << 20

    def validate(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError("config: id must be a non-empty string")
        peers = tuple(self.peers)
        if any(not isinstance(p, str) or not p for p in peers):
            raise ConfigError("config: every peer id must be a non-empty string")
        if len(set(peers)) != len(peers):
            raise ConfigError(f"config: duplicate peer ids in {list(peers)}")
        if not peers:
            raise ConfigError("config: peers must name at least one voter")
        if any(not isinstance(u, str) for _, u in self.peer_urls):
            raise ConfigError("config: peer_urls must map ids to strings")
        for name in (
            "heartbeat_tick",
            "max_inflight_msgs",
            "max_entries_per_msg",
            "max_bytes_per_msg",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"config: {name} must be >= 1")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigError(
                f"config: election_tick ({self.election_tick}) must be greater than "
                f"heartbeat_tick ({self.heartbeat_tick})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoredState:
    hard_state: HardState = field(default_factory=HardState)
    snapshot: SnapshotMeta | Snapshot | None = None
    entries: tuple[Entry, ...] | list[Entry] = ()
