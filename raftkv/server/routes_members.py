"""routes_members.py — membership over HTTP (docs/membership.md; the rules are in members.py):

- ``GET /v1/members``: the configuration, answered by the leader (a follower relays; when the
  leader cannot be reached it answers from its own configuration, ``match_index``/``reachable``
  null).
- ``POST /v1/admin/members[?force=true]`` ``{"id", "url"}``: add a learner.
- ``POST /v1/admin/members/<id>/promote[?force=true]``: make a caught-up learner a voter.
- ``DELETE /v1/admin/members/<id>``: remove a voter or a learner.

Admin routes need the cluster token (checked by the WSGI edge); any node relays them to the
leader, which answers 200 with the new configuration once the change is committed and applied.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Request, Response, request

from raftkv.config import check_member_id, check_member_url
from raftkv.errors import BadRequest, ConfigError, InvalidQuery, RaftkvError
from raftkv.raft import ChangeOp, ConfChange, Membership
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.members import members_json
from raftkv.server.relay import Relay

__all__ = ["members_blueprint"]


def _flag(req: Request, name: str) -> bool:
    raw = req.args.get(name)
    if raw is None:
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise InvalidQuery(f"{name} must be true or false, got {raw!r}")


def _only_query(req: Request, allowed: set[str]) -> None:
    for name in req.args:
        if name not in allowed:
            raise InvalidQuery(f"unknown query parameter {name!r}")


def _valid_id(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadRequest("id must be a string")
    try:
        return check_member_id("id", raw)
    except ConfigError as err:
        raise BadRequest(str(err)) from None


def _body() -> dict[str, Any]:
    try:
        obj = json.loads(request.get_data(cache=True) or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest('body must be a JSON object {"id": ..., "url": ...}') from None
    if not isinstance(obj, dict):
        raise BadRequest('body must be a JSON object {"id": ..., "url": ...}')
    return obj


def members_blueprint(node: EdgeNode, relay: Relay) -> Blueprint:
    """The blueprint serving the membership routes for ``node``."""
    bp = Blueprint("members", __name__)

    def change(c: ConfChange) -> Response:
        relayed = relay.unless_leader()
        if relayed is not None:
            return relayed
        force = _flag(request, "force") if c.op is ChangeOp.PROMOTE else False
        conf = node.change_membership(c, force)
        st = node.status()
        out = members_json(conf, st.progress, node.peer_reachable, st.peer_urls)
        return json_response(out)

    @bp.route("/v1/members", methods=["GET"])
    def list_members() -> Response:
        _only_query(request, set())
        st = node.status()
        if st.role != "leader" and st.leader is not None and st.leader != st.id:
            try:
                return relay.forward_or_raise(st.leader)
            except RaftkvError:
                pass  # the leader is unreachable: answer from our own configuration
        conf = node.membership()
        if conf is None:
            conf = Membership(voters=st.members, learners=st.learners, index=st.config_index)
        leading = st.role == "leader"
        return json_response(
            members_json(
                conf,
                st.progress if leading else None,
                node.peer_reachable if leading else None,
                st.peer_urls,
            )
        )

    @bp.route("/v1/admin/members", methods=["POST"])
    def add_member() -> Response:
        _only_query(request, {"force"})
        reuse = _flag(request, "force")
        body = _body()
        unknown = set(body) - {"id", "url"}
        if unknown or "id" not in body or "url" not in body:
            raise BadRequest('body must be {"id": "<node id>", "url": "http://host:port"}')
        nid = _valid_id(body["id"])
        if not isinstance(body["url"], str):
            raise BadRequest("url must be a string")
        try:
            url = check_member_url("url", nid, body["url"])
        except ConfigError as err:
            raise BadRequest(str(err)) from None
        return change(
            ConfChange(op=ChangeOp.ADD_LEARNER, node_id=nid, url=url, reuse_removed_id=reuse)
        )

    @bp.route("/v1/admin/members/<member_id>/promote", methods=["POST"])
    def promote_member(member_id: str) -> Response:
        _only_query(request, {"force"})
        _flag(request, "force")
        return change(ConfChange(op=ChangeOp.PROMOTE, node_id=_valid_id(member_id)))

    @bp.route("/v1/admin/members/<member_id>", methods=["DELETE"])
    def remove_member(member_id: str) -> Response:
        _only_query(request, set())
        return change(ConfChange(op=ChangeOp.REMOVE, node_id=_valid_id(member_id)))

    return bp
