"""api.py — what the HTTP layer needs from a node (``NodeAPI``), and the status it reports.

The Flask app (app.py) talks to the node only through this protocol, so route tests can use a
fake node and the real ``NodeDriver`` (driver.py) can be tested without HTTP.

Blocking calls (``propose``, ``read_barrier``, ``transfer_leadership``, ``snapshot_now``) raise
from the ``raftkv.errors`` tree: ``NotLeader(leader=...)`` when another node leads (the app then
forwards), ``NoLeader``, ``ShuttingDown``, ``ProposalLost``, ``CommitTimeout``, ``NodeFailed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from raftkv.config import NodeConfig
from raftkv.kv import Command, KVStateMachine, Result
from raftkv.raft import Message
from raftkv.server.changefeed import ChangeFeed
from raftkv.server.metrics import NodeMetrics

__all__ = ["NodeAPI", "NodeStatus"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """A consistent snapshot of the node's Raft state (``GET /v1/status``)."""

    id: str
    role: str = "follower"  # follower | pre-candidate | candidate | leader
    term: int = 0
    leader: str | None = None
    commit_index: int = 0
    last_applied: int = 0
    last_log_index: int = 0
    snapshot_index: int = 0
    members: tuple[str, ...] = field(default_factory=tuple)  # the voters
    progress: dict[str, int] = field(default_factory=dict)
    # membership (docs/membership.md): the configuration in effect on this node
    learners: tuple[str, ...] = field(default_factory=tuple)
    config_index: int = 0
    member_role: str = "voter"  # voter | learner | removed | none (joining)
    peer_urls: dict[str, str] = field(default_factory=dict)  # every member's URL

    @property
    def public_role(self) -> str:
        """``role`` as /v1/status shows it: learners, removed and joining nodes say so."""
        if self.member_role == "removed":
            return "removed"
        if self.member_role == "none":
            return "joining"
        if self.member_role == "learner":
            return "learner"
        return self.role

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.public_role,
            "term": self.term,
            "leader": self.leader,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "last_log_index": self.last_log_index,
            "snapshot_index": self.snapshot_index,
            "members": list(self.members),
            "voters": list(self.members),
            "learners": list(self.learners),
            "config_index": self.config_index,
        }


class NodeAPI(Protocol):
    config: NodeConfig
    cluster_id: str | None  # recorded in the data dir (raftkv.identity); None: joining, not known
    sm: KVStateMachine
    metrics: NodeMetrics
    feed: ChangeFeed

    def status(self) -> NodeStatus: ...

    @property
    def draining(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    def propose(self, cmd: Command, timeout: float) -> Result: ...

    def read_barrier(self, timeout: float) -> int: ...

    # the transport's Consumer (transport.py decodes a peer's POST, then hands it over)
    def deliver(self, msgs: Sequence[Message]) -> None: ...

    def deliver_and_reply(self, msgs: Sequence[Message], timeout: float) -> list[Message]: ...

    def transfer_leadership(self, target: str | None, timeout: float) -> str | None: ...

    def snapshot_now(self, timeout: float) -> int: ...

    def set_cluster_id(self, cluster_id: str) -> None: ...
    def receive_snapshot_chunk(self, headers: Any, body: bytes) -> dict[str, Any]: ...

    def change_membership(self, change: Any, force: bool, timeout: float) -> Any: ...

    def peer_reachable(self, peer_id: str) -> bool: ...

    def start(self) -> None: ...

    def begin_shutdown(self) -> None: ...

    def stop(self, timeout: float) -> None: ...
