"""routes_raft.py — ``POST /raft/v1/messages``: a peer's batch of Raft messages, answered with our
replies to it (peers only: the WSGI edge checks the cluster token / peer certificate first).

The hot path between peers is answered by the WSGI edge without Flask (wsgi_edge.py calls
``handle_raft_post``); the Flask route exists for the URL map (405 on other methods) and serves
the POST too when the edge is not in front. Reading, decoding and answering the batch is the
transport's business (``transport.receive_post``, reached through ``EdgeNode.raft_exchange``).
"""

from __future__ import annotations

from typing import IO, Any

from flask import Blueprint, Response, request

from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.peer_gate import check_peer_cluster
from raftkv.server.transport import RAFT_PATH

__all__ = ["RAFT_PATH", "handle_raft_post", "raft_blueprint"]


def handle_raft_post(node: EdgeNode, length: int | None, stream: IO[bytes]) -> dict[str, Any]:
    """``POST /raft/v1/messages``: deliver a peer's batch, answer with our replies to it."""
    return node.raft_exchange(length, stream)


def raft_blueprint(node: EdgeNode) -> Blueprint:
    """The blueprint serving ``POST /raft/v1/messages`` for ``node``."""
    bp = Blueprint("raft", __name__)

    @bp.route(RAFT_PATH, methods=["POST"])
    def raft_messages() -> Response:
        check_peer_cluster(node, request.environ)
        return json_response(handle_raft_post(node, request.content_length, request.stream))

    return bp
