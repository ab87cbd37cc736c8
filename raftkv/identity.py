"""identity.py — which cluster a node belongs to, and which voters it has, decided at start.

Cluster id (docs/operations.md "Cluster identity"):
- A data directory records its cluster id in ``CLUSTER_ID`` (storage/identity.py). Once recorded
  it never changes; ``--cluster-id``/``RAFTKV_CLUSTER_ID`` is then ignored (a different value is
  logged once as a warning), like etcd's ``--initial-cluster-token``.
- Bootstrap: a node starting on a directory without one records ``--cluster-id`` if given, else
  ``derive_cluster_id(peers)``: a hash of the sorted initial member list (id=url). Every member
  of a fresh cluster has the same flags, so they agree without talking.
- Joining: a node whose id is not among its flags' peers (it joins a running cluster, see
  docs/membership.md) records nothing at start unless ``--cluster-id`` is given; it adopts the
  id carried by the first Raft message it receives — from the cluster that added it, the only
  one that sends to it — and records it (peer_gate.py). From then on it refuses others.
- Two clusters with the same member list (same ids, hosts, ports) and no ``--cluster-id`` get
  the same id; give ``--cluster-id`` (chart: ``node.clusterId``) to tell such clusters apart.
- ``raftkv restore`` records a NEW id in every restored directory (random from raftctl, else
  derived from the backup's checksum and the new member list).

Forced voters: while ``MEMBERS.json`` (written by ``raftkv recover``) exists, the node's voter
set is the one it names, whatever ``--peers``/``--replicas`` say; URLs still come from the flags
(a voter the flags do not list is an error at start).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
from collections.abc import Iterable

from raftkv.config import NodeConfig, Peer
from raftkv.errors import ConfigError
from raftkv.storage.fsutil import DIR_MODE, sync_dir
from raftkv.storage.identity import read_cluster_id, read_membership, write_cluster_id
from raftkv.storage.recovery import SNAP_DIR, WAL_DIR

__all__ = ["derive_cluster_id", "has_state", "new_cluster_id", "resolve_identity"]

log = logging.getLogger(__name__)


def derive_cluster_id(peers: Iterable[Peer], salt: str = "") -> str:
    """16 hex chars from the sorted ``id=url`` member list (and ``salt``): deterministic."""
    lines = sorted(f"{p.id}={p.url}" for p in peers)
    blob = "raftkv-cluster-v1\n" + salt + "\n" + "\n".join(lines)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def new_cluster_id() -> str:
    """A random cluster id (16 hex chars)."""
    return secrets.token_hex(8)


def has_state(data_dir: str) -> bool:
    """True if ``data_dir`` holds any log segment or snapshot."""
    for sub in (WAL_DIR, SNAP_DIR):
        path = os.path.join(data_dir, sub)
        if os.path.isdir(path) and os.listdir(path):
            return True
    return False


def resolve_identity(config: NodeConfig) -> tuple[NodeConfig, str | None]:
    """Read (or, on first start, record) the cluster id; apply a forced voter set.

    Returns the config to run with (peers narrowed to the forced voters, if any) and the
    cluster id (None: a joining node that has not learned it yet). Raises ConfigError (one
    line) when the data dir's records cannot be honoured.
    """
    data_dir = os.path.abspath(config.data_dir)
    recorded = read_cluster_id(data_dir) if os.path.isdir(data_dir) else None
    cluster_id: str | None
    if recorded is None and config.cluster_id is None and config.id not in config.peer_ids:
        # A JOINING node (its id is not among its flags' peers, docs/membership.md): its flags
        # do not describe the cluster it joins, so it derives nothing; it adopts the id of the
        # cluster that adds it, from the first Raft message it receives (peer_gate.py).
        cluster_id = None
        log.info("event=cluster-id-pending joining=true (adopted from the cluster that adds us)")
    elif recorded is None:
        cluster_id = config.cluster_id or derive_cluster_id(config.peers)
        try:
            if not os.path.isdir(data_dir):
                os.makedirs(data_dir, mode=DIR_MODE, exist_ok=True)
                sync_dir(os.path.dirname(data_dir))
            how = "bootstrap" if not has_state(data_dir) else "adopted-for-existing-data"
            write_cluster_id(data_dir, cluster_id)
        except OSError as err:
            # An unusable data dir: opening the storage fails next, with the node's usual
            # start-failed report; nothing was recorded, so the next start tries again.
            log.warning("event=cluster-id-not-recorded dir=%s error=%s", data_dir, err)
        else:
            log.info("event=cluster-id-recorded cluster_id=%s how=%s", cluster_id, how)
    else:
        cluster_id = recorded
        if config.cluster_id and config.cluster_id != recorded:
            log.warning(
                "event=cluster-id-flag-ignored configured=%s recorded=%s (the data dir's id "
                "wins; --cluster-id only bootstraps a fresh data dir)",
                config.cluster_id,
                recorded,
            )
    members = read_membership(data_dir) if os.path.isdir(data_dir) else None
    if members is not None:
        urls = config.peer_urls
        if config.id not in members.voters:
            raise ConfigError(
                f"{data_dir}/MEMBERS.json names voters {','.join(members.voters)} but not this "
                f"node ({config.id})"
            )
        missing = [v for v in members.voters if v not in urls]
        if missing:
            raise ConfigError(
                f"{data_dir}/MEMBERS.json names voter(s) {','.join(missing)} that --peers/"
                "--replicas do not list (no URL for them)"
            )
        peers = tuple(Peer(v, urls[v]) for v in members.voters)
        log.warning(
            "event=forced-membership voters=%s index=%d reason=%s (flags list %s)",
            ",".join(members.voters),
            members.index,
            members.reason,
            ",".join(config.peer_ids),
        )
        config = dataclasses.replace(config, peers=peers)
    return config, cluster_id
