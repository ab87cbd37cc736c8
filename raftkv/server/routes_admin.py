"""routes_admin.py — ``POST /v1/admin/transfer-leader`` and ``POST /v1/admin/snapshot``.

Like every ``/v1/admin/`` route they need the cluster token when one is set (checked by the WSGI
edge before the request reaches this blueprint). The other admin routes have their own modules:
``GET /v1/admin/hash`` (routes_hash.py), ``GET /v1/admin/snapshot`` (routes_backup.py) and
``/v1/admin/members`` (routes_members.py).

- ``transfer-leader`` ``{"target": <voter id> | null}``: any node relays it to the leader, which
  hands leadership over and answers ``{"leader", "previous", "term"}`` once it is done.
- ``snapshot``: this node snapshots now: ``{"id", "snapshot_index"}``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from raftkv.errors import BadRequest, NotLeader
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.relay import Relay

__all__ = ["admin_blueprint"]


def _admin_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if request.content_length is not None and len(raw) != request.content_length:
        raise BadRequest(
            f"request body truncated: got {len(raw)} of {request.content_length} bytes"
        )
    if not raw.strip():
        return {}
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep
        raise BadRequest("body must be a JSON object") from None
    if not isinstance(obj, dict):
        raise BadRequest("body must be a JSON object")
    return obj


def admin_blueprint(node: EdgeNode, relay: Relay) -> Blueprint:
    """The blueprint serving leadership transfer and on-demand snapshots for ``node``."""
    bp = Blueprint("admin", __name__)

    @bp.route("/v1/admin/transfer-leader", methods=["POST"])
    def transfer_leader() -> Response:
        body = _admin_body()
        unknown = set(body) - {"target"}
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        target = body.get("target")
        voters = node.status().members  # from the configuration: members added later count
        if target is not None and (not isinstance(target, str) or target not in voters):
            raise BadRequest(f"target must be null or one of {', '.join(voters)}, got {target!r}")
        relayed = relay.unless_leader()
        if relayed is not None:
            return relayed
        before = node.status()
        if target == node.id:
            return json_response({"leader": node.id, "previous": node.id, "term": before.term})
        with node.slot():
            try:
                new_leader = node.transfer_leadership(target)
            except NotLeader as err:
                return relay.forward_or_raise(err.leader)
        after = node.status()
        return json_response({"leader": new_leader, "previous": node.id, "term": after.term})

    @bp.route("/v1/admin/snapshot", methods=["POST"])
    def snapshot() -> Response:
        with node.slot():
            index = node.snapshot_now()
        return json_response({"id": node.id, "snapshot_index": index})

    return bp
