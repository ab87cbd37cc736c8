"""routes_snapshot.py — ``POST /raft/v1/snapshot``: one chunk of a snapshot streamed by the
leader (snapshot_stream.py). Peers only: like every ``/raft/`` route it needs the cluster token
when one is set (checked by the app's WSGI edge). Answers ``{"received": n, "complete": bool}``;
a chunk that does not start where this node's copy ends is ``409 snapshot_offset_mismatch``
with ``received`` (where the sender must resume); bad headers or a damaged stream are 400.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from raftkv.errors import BadRequest, PayloadTooLarge
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.peer_gate import check_peer_cluster
from raftkv.server.snapshot_stream import MAX_CHUNK_BYTES, SNAPSHOT_PATH

__all__ = ["SNAPSHOT_PATH", "snapshot_blueprint"]


def snapshot_blueprint(node: EdgeNode) -> Blueprint:
    """The blueprint serving ``POST /raft/v1/snapshot`` for ``node``."""
    bp = Blueprint("raftkv_snapshot_stream", __name__)

    @bp.route(SNAPSHOT_PATH, methods=["POST"])
    def snapshot_chunk() -> Response:
        check_peer_cluster(node, request.environ)  # another cluster's chunks: 409
        length = request.content_length
        if length is None:
            raise BadRequest("a snapshot chunk needs a Content-Length")
        if length > MAX_CHUNK_BYTES:
            raise PayloadTooLarge(f"snapshot chunk of {length} bytes is too large")
        body = request.stream.read(length)
        if len(body) != length:
            raise BadRequest(f"snapshot chunk truncated: {len(body)} of {length} bytes")
        answer = node.receive_snapshot_chunk(request.headers, body)
        return json_response(answer)

    return bp
