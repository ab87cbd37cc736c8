"""routes_hash.py — ``GET /v1/admin/hash``: this replica's state-machine hash at its applied index.

Like ``etcdctl endpoint hashkv``: ``{"id", "applied_index", "hash", "keys"}``, where ``hash`` is
the hex SHA-256 over the sorted key/value pairs (``KVStateMachine.content_hash``). Replicas that
applied the same index must answer the same hash; ``raftctl verify`` waits until every replica
applied the same index and compares them. Served locally (never forwarded), with no Raft round
trip. Like every ``/v1/admin/`` route it needs the cluster token when one is set (checked by the
app's WSGI edge before the request reaches this blueprint).
"""

from __future__ import annotations

from flask import Blueprint, Response

from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response

__all__ = ["HASH_PATH", "hash_blueprint"]

HASH_PATH = "/v1/admin/hash"


def hash_blueprint(node: EdgeNode) -> Blueprint:
    """The blueprint serving ``GET /v1/admin/hash`` for ``node``."""
    bp = Blueprint("raftkv_hash", __name__)

    @bp.route(HASH_PATH, methods=["GET"])
    def admin_hash() -> Response:
        applied, keys, digest = node.content_hash()
        body = {"id": node.id, "applied_index": applied, "hash": digest, "keys": keys}
        return json_response(body)

    return bp
