"""members.py — membership over HTTP (docs/membership.md): list, add a learner, promote, remove.

Routes (registered on the app by ``register_members``):

- ``GET /v1/members`` -> ``{"members": [{"id", "url", "role", "match_index", "reachable"}],
  "config_index", "removed"}`` (``removed``: ids that can never join again). Answered by the
  leader (a follower forwards; without a leader it answers from its own configuration with
  ``match_index``/``reachable`` null).
- ``POST /v1/admin/members`` ``{"id", "url"}``: add a learner.
- ``POST /v1/admin/members/<id>/promote[?force=true]``: make a caught-up learner a voter.
- ``DELETE /v1/admin/members/<id>``: remove a voter or a learner.

Admin routes need the cluster token (the app's edge checks it for every ``/v1/admin/``), any node
forwards them to the leader, and they answer 200 with the new configuration once the change is
committed and applied. 409: another change in flight, the learner is not caught up, or the change
would leave the new voter set without a reachable majority; 404: unknown member; 400: malformed id
or URL. The checks that need the leader's view (progress, reachability) run in the driver thread
(``check_change``), right before the core appends the entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Request, Response, request

from raftkv.config import _check_id, _check_url
from raftkv.errors import BadRequest, ConfigError, InvalidQuery, RaftkvError
from raftkv.raft import ChangeOp, ConfChange, Membership
from raftkv.raft.quorum import quorum_size

__all__ = [
    "CATCH_UP_GAP",
    "MemberNotFound",
    "MembershipConflict",
    "check_change",
    "members_json",
    "register_members",
]

# A learner is caught up when its match index is within this many entries of the leader's last
# index (thesis §4.2.1 waits for a round that replicates in under an election timeout; a gap of a
# few batches is the same idea, measured in entries).
CATCH_UP_GAP = 64


class MembershipConflict(RaftkvError):
    """409: the change cannot be made now (in flight, not caught up, quorum at risk)."""

    status = 409
    code = "membership_conflict"


class MemberNotFound(RaftkvError):
    status = 404
    code = "member_not_found"


def check_change(
    conf: Membership,
    change: ConfChange,
    *,
    leader_id: str,
    match: Mapping[str, int],
    last_index: int,
    reachable: Callable[[str], bool],
    force: bool,
) -> None:
    """The leader's admission checks for ``change`` against ``conf`` (raises 404/409)."""
    nid = change.node_id
    if change.op is ChangeOp.ADD_LEARNER:
        if nid in conf.members:
            raise MembershipConflict(f"{nid} is already a member ({conf.role_of(nid)})")
        if nid in conf.removed:
            raise MembershipConflict(
                f"{nid} was removed from this cluster; a replacement needs a new id"
            )
        return
    if nid not in conf.members:
        raise MemberNotFound(f"no member {nid!r} (members: {', '.join(conf.members)})")
    if change.op is ChangeOp.PROMOTE:
        if nid in conf.voters:
            raise MembershipConflict(f"{nid} is already a voter")
        lag = last_index - match.get(nid, 0)
        if not force and lag > CATCH_UP_GAP:
            raise MembershipConflict(
                f"learner {nid} is not caught up: {lag} entries behind the leader (at most "
                f"{CATCH_UP_GAP}); wait, or promote with ?force=true"
            )
        voters = (*conf.voters, nid)
    else:
        voters = tuple(v for v in conf.voters if v != nid)
        if not voters:
            raise MembershipConflict(f"{nid} is the last voter; it cannot be removed")
    live = [v for v in voters if v == leader_id or reachable(v)]
    need = quorum_size(len(voters))
    if len(live) < need:
        raise MembershipConflict(
            f"after this change the voters would be {', '.join(voters)}: only "
            f"{len(live)} reachable ({', '.join(live) or 'none'}), a majority needs {need}"
        )


def members_json(
    conf: Membership,
    match: Mapping[str, int] | None,
    reachable: Callable[[str], bool] | None,
    urls: Mapping[str, str],
) -> dict[str, Any]:
    members = []
    for nid in conf.members:
        members.append(
            {
                "id": nid,
                "url": conf.url(nid) or urls.get(nid, ""),
                "role": "voter" if nid in conf.voters else "learner",
                "match_index": match.get(nid) if match is not None else None,
                "reachable": reachable(nid) if reachable is not None else None,
            }
        )
    return {"members": members, "config_index": conf.index, "removed": list(conf.removed)}


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
        return _check_id("id", raw)
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


def register_members(app: Flask, node: Any, forward: Callable[[str | None], Response]) -> None:
    """Add the membership routes to ``app``. ``forward(leader)`` relays the current request to the
    leader (or raises 503 when there is none); ``node`` is the NodeAPI."""

    def answer(obj: dict[str, Any], status: int = 200) -> Response:
        return Response(
            json.dumps(obj, separators=(",", ":")), status=status, mimetype="application/json"
        )

    def relay_unless_leader() -> Response | None:
        st = node.status()
        return None if st.role == "leader" else forward(st.leader)

    def change(c: ConfChange) -> Response:
        relayed = relay_unless_leader()
        if relayed is not None:
            return relayed
        force = _flag(request, "force") if c.op is ChangeOp.PROMOTE else False
        conf: Membership = node.change_membership(c, force, node.config.request_timeout)
        st = node.status()
        out = members_json(conf, st.progress, node.peer_reachable, st.peer_urls)
        return answer(out)

    @app.route("/v1/members", methods=["GET"])
    def list_members() -> Response:
        _only_query(request, set())
        st = node.status()
        if st.role != "leader" and st.leader is not None and st.leader != st.id:
            try:
                return forward(st.leader)
            except RaftkvError:
                pass  # the leader is unreachable: answer from our own configuration
        conf = node.membership() if hasattr(node, "membership") else None
        if conf is None:
            conf = Membership(voters=st.members, learners=st.learners, index=st.config_index)
        leading = st.role == "leader"
        return answer(
            members_json(
                conf,
                st.progress if leading else None,
                node.peer_reachable if leading else None,
                st.peer_urls,
            )
        )

    @app.route("/v1/admin/members", methods=["POST"])
    def add_member() -> Response:
        _only_query(request, set())
        body = _body()
        unknown = set(body) - {"id", "url"}
        if unknown or "id" not in body or "url" not in body:
            raise BadRequest('body must be {"id": "<node id>", "url": "http://host:port"}')
        nid = _valid_id(body["id"])
        if not isinstance(body["url"], str):
            raise BadRequest("url must be a string")
        try:
            url = _check_url("url", nid, body["url"])
        except ConfigError as err:
            raise BadRequest(str(err)) from None
        return change(ConfChange(op=ChangeOp.ADD_LEARNER, node_id=nid, url=url))

    @app.route("/v1/admin/members/<member_id>/promote", methods=["POST"])
    def promote_member(member_id: str) -> Response:
        _only_query(request, {"force"})
        _flag(request, "force")
        return change(ConfChange(op=ChangeOp.PROMOTE, node_id=_valid_id(member_id)))

    @app.route("/v1/admin/members/<member_id>", methods=["DELETE"])
    def remove_member(member_id: str) -> Response:
        _only_query(request, set())
        return change(ConfChange(op=ChangeOp.REMOVE, node_id=_valid_id(member_id)))
