"""peer_gate.py — refuse Raft messages from another cluster (docs/operations.md).

Every peer POST carries ``X-Raftkv-Cluster-Id`` (and ``X-Raftkv-Node``, the sender's id; see
transport.py). ``check_peer_cluster(node, environ)`` raises ``ClusterIdMismatch`` (409) when the
sender's id differs from this node's, logging it ONCE per (sender, its cluster id) so a
misconfigured peer's heartbeats do not flood the log. A POST without the header (an older raftkv
or a hand-made request) is let through: the cluster token, not the id, authenticates peers.
A JOINING node that has no id yet (raftkv/identity.py) adopts the first one it is sent, records
it (fsync) and refuses every other from then on.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from raftkv.errors import ClusterIdMismatch
from raftkv.storage.identity import is_valid_cluster_id, write_cluster_id

__all__ = ["CLUSTER_HEADER", "NODE_HEADER", "check_peer_cluster"]

log = logging.getLogger(__name__)

CLUSTER_HEADER = "X-Raftkv-Cluster-Id"
NODE_HEADER = "X-Raftkv-Node"
_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()


def check_peer_cluster(node: Any, environ: dict[str, Any]) -> None:
    theirs: str = environ.get("HTTP_X_RAFTKV_CLUSTER_ID", "")
    ours: str | None = getattr(node, "cluster_id", None)
    if not theirs or theirs == ours:
        return
    if ours is None:  # a joining node: the cluster that adds it is the one that calls it
        _adopt(node, theirs, environ)
        return
    sender = environ.get("HTTP_X_RAFTKV_NODE") or environ.get("REMOTE_ADDR") or "?"
    key = (str(sender)[:80], theirs[:80])
    with _seen_lock:
        first = key not in _seen
        if first and len(_seen) < 10_000:
            _seen.add(key)
    if first:
        log.error(
            "event=cluster-id-mismatch sender=%s sender_cluster_id=%s cluster_id=%s "
            "action=refused (409): the sender belongs to another cluster",
            key[0],
            key[1],
            ours,
        )
    raise ClusterIdMismatch(
        f"node {getattr(node.config, 'id', '?')} belongs to cluster {ours}, "
        f"the message comes from cluster {theirs[:80]}"
    )


_adopt_lock = threading.Lock()


def _adopt(node: Any, theirs: str, environ: dict[str, Any]) -> None:
    """Record ``theirs`` as this joining node's cluster id (durably), once."""
    if not is_valid_cluster_id(theirs):
        raise ClusterIdMismatch(f"invalid cluster id in {CLUSTER_HEADER}: {theirs[:80]!r}")
    with _adopt_lock:
        if node.cluster_id is not None:  # another request adopted meanwhile
            if node.cluster_id != theirs:
                raise ClusterIdMismatch(
                    f"node {node.config.id} belongs to cluster {node.cluster_id}, "
                    f"the message comes from cluster {theirs}"
                )
            return
        write_cluster_id(node.config.data_dir, theirs)
        node.set_cluster_id(theirs)
    log.info(
        "event=cluster-id-adopted cluster_id=%s sender=%s",
        theirs,
        environ.get("HTTP_X_RAFTKV_NODE") or environ.get("REMOTE_ADDR") or "?",
    )
