"""agreement.py — do the replicas hold the same state? (``GET /v1/admin/hash`` on every node)

Contract: ``check_agreement(replicas)`` polls every replica's ``/v1/admin/hash`` (``{"id",
"applied_index", "hash", "keys"}``, the state-machine hash at its applied index) until all of them
answer with the same applied index, then compares the hashes: equal → agreement; different →
a divergence, named replica by replica. A replica that does not answer, or indexes that do not
converge within ``timeout`` (nothing else should be writing), fail the check with the reason.
Nodes that do not serve the route (404) make the check *skipped*, never passed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from raftctl.backends.base import Replica
from raftctl.client import NodeUnreachable, Transport

__all__ = ["HASH_PATH", "Agreement", "ReplicaHash", "check_agreement"]

HASH_PATH = "/v1/admin/hash"


@dataclass(frozen=True)
class ReplicaHash:
    id: str
    url: str
    applied_index: int | None = None
    hash: str | None = None
    keys: int | None = None
    error: str | None = None
    missing: bool = False  # the node has no /v1/admin/hash (404)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "applied_index": self.applied_index,
            "hash": self.hash,
            "keys": self.keys,
            "error": self.error,
        }


@dataclass
class Agreement:
    """``ok``: True agree, False diverged/unreachable/no convergence, None skipped."""

    ok: bool | None
    explanation: str
    replicas: list[ReplicaHash] = field(default_factory=list)
    waited_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "explanation": self.explanation,
            "waited_s": round(self.waited_s, 3),
            "replicas": [r.to_json() for r in self.replicas],
        }


def _fetch(transport: Transport, replica: Replica) -> ReplicaHash:
    try:
        reply = transport.request(replica.url, "GET", HASH_PATH, timeout=2.0)
    except NodeUnreachable as err:
        return ReplicaHash(replica.id, replica.url, error=f"unreachable ({err.why})")
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 404:
        return ReplicaHash(replica.id, replica.url, error="no /v1/admin/hash", missing=True)
    if reply.status == 401:
        return ReplicaHash(
            replica.id,
            replica.url,
            error="401: the cluster token is needed (--token / RAFTCTL_TOKEN)",
        )
    index, digest, keys = body.get("applied_index"), body.get("hash"), body.get("keys")
    if reply.status != 200 or not isinstance(index, int) or not isinstance(digest, str):
        return ReplicaHash(replica.id, replica.url, error=f"{reply.status}: {reply.error}")
    rid = body.get("id")
    return ReplicaHash(
        rid if isinstance(rid, str) else replica.id,
        replica.url,
        index,
        digest,
        keys if isinstance(keys, int) else None,
    )


def check_agreement(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 30.0
) -> Agreement:
    """Wait for one applied index everywhere, then compare the hashes."""
    t0 = time.monotonic()
    transport = Transport(timeout=2.0, token=token)
    try:
        while True:
            hashes = [_fetch(transport, r) for r in replicas]
            waited = time.monotonic() - t0
            if hashes and all(h.missing for h in hashes):
                return Agreement(
                    None, "skipped: the nodes do not serve /v1/admin/hash", hashes, waited
                )
            indexes = {h.applied_index for h in hashes}
            if all(h.error is None for h in hashes) and len(indexes) == 1:
                break
            if waited > timeout:
                bad = [f"{h.id}: {h.error}" for h in hashes if h.error]
                if bad:
                    why = "; ".join(bad)
                else:
                    why = (
                        "applied indexes "
                        + ", ".join(f"{h.id}={h.applied_index}" for h in hashes)
                        + " did not converge"
                    )
                return Agreement(
                    False,
                    f"replica agreement not established within {timeout:.0f}s: {why}",
                    hashes,
                    waited,
                )
            time.sleep(0.1)
    finally:
        transport.close()
    index = hashes[0].applied_index
    digests = {h.hash for h in hashes}
    if len(digests) == 1:
        return Agreement(
            True,
            f"all {len(hashes)} replicas hold the same state at applied index "
            f"{index} ({hashes[0].keys} keys, sha256 {hashes[0].hash:.12}…)",
            hashes,
            waited,
        )
    groups: dict[str, list[str]] = {}
    for h in hashes:
        groups.setdefault(h.hash or "", []).append(f"{h.id} ({h.keys} keys)")
    text = "; ".join(f"{', '.join(ids)}: sha256 {d:.12}…" for d, ids in groups.items())
    return Agreement(
        False, f"replicas DIVERGED at the same applied index {index}: {text}", hashes, waited
    )
