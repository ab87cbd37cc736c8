"""routes_backup.py — ``GET /v1/admin/snapshot``: stream a backup of the KV state (backup.py).

Contract (docs/operations.md "Backup"):
- Protected like every ``/v1/admin/*`` route: ``Authorization: Bearer <token>`` when the cluster
  has a token (checked by the WSGI edge, wsgi_edge.py, before this runs).
- Point in time: the node copies the state machine (index, term, keys, encoded data) in ONE
  critical section of the KV lock — the same pause as the node's own periodic snapshot — and
  streams that copy afterwards; the driver never waits on a slow reader.
- Linearizable by default: on the leader, after a ReadIndex round (the backup holds every write
  acknowledged before the request arrived); a follower relays the request to the leader
  (relay.py decides whether it may; the answer's headers are re-derived from the body).
  ``?consistency=stale`` serves the node's own applied state at once (any replica, may be behind).
- The answer is the backup file itself (application/octet-stream, self-describing, SHA-256 in
  its trailer) plus ``X-Raftkv-Snapshot-Index/-Term/-Keys/-Checksum`` and ``X-Raftkv-Cluster-Id``
  headers and a ``Content-Length``.
"""

from __future__ import annotations

import io
import time

from flask import Blueprint, Response, request

from raftkv.backup import TRAILER_SIZE, build_header, checksum_of, iter_backup, verify_backup
from raftkv.errors import NotLeader
from raftkv.server.edge_node import EdgeNode
from raftkv.server.query import check_query, linearizable
from raftkv.server.relay import Relay

__all__ = ["SNAPSHOT_HEADERS", "backup_blueprint"]

_QUERY = frozenset({"consistency"})
SNAPSHOT_HEADERS = (
    "X-Raftkv-Snapshot-Index",
    "X-Raftkv-Snapshot-Term",
    "X-Raftkv-Snapshot-Keys",
    "X-Raftkv-Snapshot-Checksum",
    "X-Raftkv-Cluster-Id",
)


def _headers(
    index: int, term: int, keys: int, checksum: str, cluster_id: str, size: int
) -> dict[str, str]:
    return {
        "X-Raftkv-Snapshot-Index": str(index),
        "X-Raftkv-Snapshot-Term": str(term),
        "X-Raftkv-Snapshot-Keys": str(keys),
        "X-Raftkv-Snapshot-Checksum": f"sha256:{checksum}",
        "X-Raftkv-Cluster-Id": cluster_id,
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="raftkv-{index}.snapshot"',
    }


def backup_blueprint(node: EdgeNode, relay: Relay) -> Blueprint:
    """The blueprint serving ``GET /v1/admin/snapshot`` for ``node``."""
    bp = Blueprint("backup", __name__)

    def relay_backup(leader: str | None) -> Response:
        leader = relay.check(leader, ", or ask for ?consistency=stale")
        path_qs = request.full_path if request.query_string else request.path
        status, headers, data = relay.forwarder.forward(
            leader, "GET", path_qs, request.headers, b""
        )
        out = dict(headers)
        if status == 200:
            try:  # the relay passes few headers: re-derive ours from the self-describing body
                info, _ = verify_backup(io.BytesIO(data))
            except ValueError:
                pass
            else:
                out.update(
                    _headers(
                        info.index, info.term, info.keys, info.checksum, info.cluster_id, info.size
                    )
                )
        return Response(data, status=status, headers=out)

    @bp.route("/v1/admin/snapshot", methods=["GET"])
    def get_snapshot() -> Response:
        check_query(request, _QUERY)
        if linearizable(request):
            st = node.status()
            if st.role != "leader":
                return relay_backup(st.leader)
            with node.slot():
                try:
                    node.read_barrier()
                except NotLeader as err:
                    return relay_backup(err.leader)
        copy = node.backup_copy()  # one consistent copy; streamed after the lock is released
        index, term, keys, data = copy.index, copy.term, copy.keys, copy.data
        cluster_id = node.cluster_id or ""
        header = build_header(
            index=index,
            term=term,
            keys=keys,
            data_bytes=len(data),
            cluster_id=cluster_id,
            node=node.id,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        size = len(header) + len(data) + TRAILER_SIZE
        return Response(
            iter_backup(header, data),
            mimetype="application/octet-stream",
            headers=_headers(index, term, keys, checksum_of(header, data), cluster_id, size),
        )

    return bp
