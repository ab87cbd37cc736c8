"""routes_raft.py — ``POST /raft/v1/messages``: a peer's batch of Raft messages, answered with our
replies to it (peers only: the WSGI edge checks the cluster token / peer certificate first).

The hot path between peers is answered by the WSGI edge without Flask (wsgi_edge.py calls
``handle_raft_post``); the Flask route exists for the URL map (405 on other methods) and serves
the POST too when the edge is not in front. Decoding the messages is the node's business
(``EdgeNode.raft_exchange``): this module only checks the envelope.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from raftkv.errors import MalformedRaftMessage, PayloadTooLarge
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.peer_gate import check_peer_cluster
from raftkv.server.transport import RAFT_PATH

__all__ = ["MAX_RAFT_BODY", "RAFT_PATH", "REPLY_WAIT_S", "handle_raft_post", "raft_blueprint"]

MAX_RAFT_BODY = 512 << 20
REPLY_WAIT_S = 2.0  # how long a Raft POST waits for the replies it triggers (normally one fsync)


def handle_raft_post(node: EdgeNode, length: int | None, stream: Any) -> dict[str, Any]:
    """``POST /raft/v1/messages``: deliver a peer's batch, answer with our replies to it."""
    if length is not None and length > MAX_RAFT_BODY:
        raise PayloadTooLarge(f"Raft message batch of {length} bytes is too large")
    body = stream.read(length) if length is not None else stream.read(MAX_RAFT_BODY + 1)
    if length is not None and len(body) != length:  # the peer went away mid-body
        raise MalformedRaftMessage(f"body truncated: got {len(body)} of {length} bytes")
    if len(body) > MAX_RAFT_BODY:
        raise PayloadTooLarge("Raft message batch is too large")
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting too deep
        raise MalformedRaftMessage(f"body is not JSON: {type(err).__name__}: {err}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise MalformedRaftMessage('body must be {"messages": [...]}')
    received, replies = node.raft_exchange(obj["messages"], REPLY_WAIT_S)
    return {"ok": True, "received": received, "messages": replies}


def raft_blueprint(node: EdgeNode) -> Blueprint:
    """The blueprint serving ``POST /raft/v1/messages`` for ``node``."""
    bp = Blueprint("raft", __name__)

    @bp.route(RAFT_PATH, methods=["POST"])
    def raft_messages() -> Response:
        check_peer_cluster(node, request.environ)
        return json_response(handle_raft_post(node, request.content_length, request.stream))

    return bp
