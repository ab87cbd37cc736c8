"""edge_node.py — ``EdgeNode``: the narrow node API the HTTP blueprints depend on.

The blueprints (routes_*.py, watch.py) never touch the driver or its state machine directly:
they get an ``EdgeNode`` wrapping the ``NodeAPI`` (api.py) and call its methods. That is the one
place that knows how a route's question maps onto the node (which lock a consistent backup copy
needs, which timeout a blocking call gets, how a Raft batch is handed over), so the driver can
change its insides without touching a route, and a route can be read without knowing the driver.

It also owns the node's request slots: requests that block on the node (writes, linearizable
reads, forwarding, watches) take one from a semaphore sized below gunicorn's thread count, so the
Raft RPC from peers always finds a free thread (otherwise a leader whose threads all wait on
commits could not receive the acknowledgements that commit them). No slot -> 503 ``overloaded``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from raftkv.config import NodeConfig
from raftkv.errors import Overloaded
from raftkv.kv import Command, Result, fingerprint
from raftkv.raft import ConfChange, Membership
from raftkv.server.api import NodeAPI, NodeStatus
from raftkv.server.changefeed import ChangeFeed
from raftkv.server.metrics import NodeMetrics
from raftkv.server.transport import receive_post

__all__ = ["BackupCopy", "EdgeNode", "NodeStatus"]  # NodeStatus: what status() answers


@dataclass(frozen=True, slots=True)
class BackupCopy:
    """One consistent copy of the state machine (``GET /v1/admin/snapshot``)."""

    index: int
    term: int
    keys: int
    data: bytes


class EdgeNode:
    """What the HTTP routes may ask of the node (see module docstring)."""

    def __init__(self, node: NodeAPI) -> None:
        self._node = node
        cfg: NodeConfig = node.config
        self.config = cfg
        self.id = cfg.id
        self.request_timeout = cfg.request_timeout
        reserve = max(4, cfg.threads // 8)
        self.slots = threading.BoundedSemaphore(max(1, cfg.threads - reserve))

    # ------------------------------------------------------------------ identity and state
    @property
    def metrics(self) -> NodeMetrics:
        return self._node.metrics

    @property
    def feed(self) -> ChangeFeed:
        return self._node.feed

    @property
    def cluster_id(self) -> str | None:
        return self._node.cluster_id

    def set_cluster_id(self, cluster_id: str) -> None:
        self._node.set_cluster_id(cluster_id)

    def status(self) -> NodeStatus:
        return self._node.status()

    @property
    def draining(self) -> bool:
        return self._node.draining

    @property
    def started(self) -> bool:
        return self._node.started

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot for a call that blocks on the node (503 when none is free)."""
        if not self.slots.acquire(blocking=False):
            raise Overloaded("too many requests in flight on this node; retry")
        try:
            yield
        finally:
            self.slots.release()

    # ------------------------------------------------------------------ the state machine
    def get(self, key: str) -> tuple[str, int] | None:
        """(value, modification index) of ``key`` as applied on this node, or None."""
        return self._node.sm.get(key)

    def list_prefix(self, prefix: str, limit: int) -> list[tuple[str, str, int]]:
        return self._node.sm.list_prefix(prefix, limit)

    def recorded_result(self, cmd: Command) -> Result | None:
        """The recorded result of a write carrying an X-Request-Id that was already applied
        (exactly-once), else None; raises the session refusals (kv/errors.py)."""
        if cmd.client_id is None or cmd.seq is None:
            return None
        return self._node.sm.lookup_session(cmd.client_id, cmd.seq, fingerprint(cmd))

    def content_hash(self) -> tuple[int, int, str]:
        """(applied index, key count, SHA-256 hex) of this replica's state."""
        return self._node.sm.content_hash()

    def backup_copy(self) -> BackupCopy:
        """One consistent copy, taken in ONE critical section of the state machine's lock (the
        same pause as the node's own periodic snapshot); streamed by the caller afterwards."""
        sm = self._node.sm
        with sm.lock:
            return BackupCopy(sm.applied_index, sm.applied_term, len(sm), sm.snapshot())

    # ------------------------------------------------------------------ blocking node calls
    def propose(self, cmd: Command) -> Result:
        return self._node.propose(cmd, self.request_timeout)

    def read_barrier(self) -> int:
        return self._node.read_barrier(self.request_timeout)

    def transfer_leadership(self, target: str | None) -> str | None:
        return self._node.transfer_leadership(target, self.request_timeout)

    def snapshot_now(self) -> int:
        return self._node.snapshot_now(self.request_timeout)

    # ------------------------------------------------------------------ membership
    def change_membership(self, change: ConfChange, force: bool) -> Membership:
        conf: Membership = self._node.change_membership(change, force, self.request_timeout)
        return conf

    def membership(self) -> Membership | None:
        """The configuration in effect, when the node tracks one (None: derive it from status)."""
        getter = getattr(self._node, "membership", None)
        return getter() if getter is not None else None

    def peer_reachable(self, peer_id: str) -> bool:
        return self._node.peer_reachable(peer_id)

    # ------------------------------------------------------------------ peers
    def raft_exchange(self, length: int | None, stream: IO[bytes]) -> dict[str, Any]:
        """A peer's POSTed batch: read, decoded, delivered and answered by the transport."""
        return receive_post(self._node, self._node.config.id, length, stream)

    def receive_snapshot_chunk(self, headers: Any, body: bytes) -> dict[str, Any]:
        return self._node.receive_snapshot_chunk(headers, body)
