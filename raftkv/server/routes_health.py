"""routes_health.py — observability: ``GET /v1/status``, ``/healthz``, ``/readyz``, ``/metrics``.

- ``/v1/status``: the node's Raft state (api.NodeStatus) and ``cluster_id``.
- ``/healthz``: 200 while the node runs (500 ``node_failed`` otherwise): the liveness probe.
- ``/readyz``: 200 when this node can serve (running, not draining, a member, a leader known,
  caught up with the commit index); else 503 + ``Retry-After: 1`` with the reason in ``error``.
- ``/metrics``: Prometheus text (the only non-JSON answer besides a backup download).
"""

from __future__ import annotations

from flask import Blueprint, Response

from raftkv.errors import NodeFailed
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response

__all__ = ["health_blueprint"]


def health_blueprint(node: EdgeNode) -> Blueprint:
    """The blueprint serving status, health, readiness and metrics for ``node``."""
    bp = Blueprint("health", __name__)

    @bp.route("/v1/status", methods=["GET"])
    def status() -> Response:
        return json_response({**node.status().to_json(), "cluster_id": node.cluster_id})

    @bp.route("/healthz", methods=["GET"])
    def healthz() -> Response:
        if not node.started:
            raise NodeFailed(f"node {node.id} is not running")
        return json_response({"ok": True, "id": node.id})

    @bp.route("/readyz", methods=["GET"])
    def readyz() -> Response:
        st = node.status()
        why = None
        if not node.started:
            why = "node is not running"
        elif node.draining:
            why = "node is shutting down"
        elif st.member_role in ("none", "removed"):
            why = "joining" if st.member_role == "none" else "removed from the cluster"
        elif st.leader is None:
            why = "no known leader"
        elif st.last_applied < st.commit_index:
            why = f"applying: last_applied {st.last_applied} < commit_index {st.commit_index}"
        body = {
            "ready": why is None,
            "id": node.id,
            "role": st.public_role,
            "leader": st.leader,
            "commit_index": st.commit_index,
            "last_applied": st.last_applied,
        }
        if why is not None:
            body["error"] = f"not ready: {why}"
            return json_response(body, 503, {"Retry-After": "1"})
        return json_response(body)

    @bp.route("/metrics", methods=["GET"])
    def metrics() -> Response:
        return Response(node.metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    return bp
