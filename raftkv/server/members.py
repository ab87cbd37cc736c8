"""members.py — the membership rules the HTTP API applies (docs/membership.md): the leader's
admission checks for a change (``check_change``, run in the driver thread) and the JSON shape of a
configuration (``members_json``). The routes are in routes_members.py:

- ``GET /v1/members`` -> ``{"members": [{"id", "url", "role", "match_index", "reachable"}],
  "config_index", "removed"}`` (``removed``: ids that can never join again). Answered by the
  leader (a follower forwards; without a leader it answers from its own configuration with
  ``match_index``/``reachable`` null).
- ``POST /v1/admin/members[?force=true]`` ``{"id", "url"}``: add a learner (``force``: the id
  may be one removed before, when its old data is gone for good).
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

from collections.abc import Callable, Mapping
from typing import Any

from raftkv.errors import RaftkvError
from raftkv.raft import ChangeOp, ConfChange, Membership
from raftkv.raft.quorum import quorum_size

__all__ = [
    "CATCH_UP_GAP",
    "MemberNotFound",
    "MembershipConflict",
    "check_change",
    "members_json",
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
        if nid in conf.removed and not change.reuse_removed_id:
            raise MembershipConflict(
                f"{nid} was removed from this cluster; a replacement needs a new id (or, if its "
                "old data is gone for good, add it with ?force=true)"
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
