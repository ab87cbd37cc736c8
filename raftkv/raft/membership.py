"""membership.py — membership changes as log entries (thesis §4.1, single-server changes).

A change is one of:

- ``add_learner(id, url)``: a new member that receives entries and snapshots but does not vote;
- ``promote(id)``: a learner becomes a voter (the node checks it is caught up first, thesis §4.2.1);
- ``remove(id)``: a voter or learner leaves; its id is remembered in ``Membership.removed`` and is
  not added again (a replacement takes a new id, so a stale disk can never pose as it) unless the
  change says ``reuse_removed_id`` (the operator asserts the old disk is gone for good, e.g. a
  StatefulSet ordinal scaled down with its PVC deleted, then up again);
- ``bootstrap``: the first leader of a cluster writes the configuration it was started with (from
  flags) into the log, so from then on the log, not the flags, defines membership.

Each changes the voter set by at most one server, so any majority of the old voters overlaps any
majority of the new ones: no two leaders can be elected in one term across a change. A CONFIG
entry carries the change AND the whole resulting configuration (``encode_change``), so a node finds
its configuration from the last CONFIG entry in its log (or its snapshot's) without replaying
anything: that is what makes "takes effect when appended, reverts when truncated" simple.

Pure functions and values only (no I/O).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from raftkv.raft.errors import ConfigError, MessageDecodeError
from raftkv.raft.types import Index, Membership, NodeId

__all__ = [
    "ChangeOp",
    "ConfChange",
    "apply_change",
    "decode_change",
    "encode_change",
    "membership_from_json",
    "membership_to_json",
]

_MAX_ID = 256
_MAX_URL = 2048


class ChangeOp(enum.StrEnum):
    BOOTSTRAP = "bootstrap"
    ADD_LEARNER = "add_learner"
    PROMOTE = "promote"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfChange:
    op: ChangeOp
    node_id: NodeId = ""
    url: str = ""
    # add_learner only: allow an id removed before (validation at the leader; not logged)
    reuse_removed_id: bool = False

    def describe(self) -> str:
        if self.op is ChangeOp.BOOTSTRAP:
            return "bootstrap"
        return f"{self.op.value} {self.node_id}" + (f" url={self.url}" if self.url else "")


def apply_change(conf: Membership, change: ConfChange) -> Membership:
    """The configuration after ``change`` (its ``index`` unchanged); ConfigError if invalid."""
    nid = change.node_id
    if change.op is ChangeOp.BOOTSTRAP:
        return conf
    if not isinstance(nid, str) or not nid or len(nid) > _MAX_ID:
        raise ConfigError(f"membership change: bad node id {nid!r}")
    urls = dict(conf.urls)
    if change.op is ChangeOp.ADD_LEARNER:
        if nid in conf.removed and not change.reuse_removed_id:
            raise ConfigError(f"{nid} was removed from this cluster; a new member needs a new id")
        if nid in conf.voters or nid in conf.learners:
            raise ConfigError(f"{nid} is already a member")
        if not change.url or len(change.url) > _MAX_URL:
            raise ConfigError(f"membership change: {nid} needs a URL")
        urls[nid] = change.url
        removed = tuple(x for x in conf.removed if x != nid)
        return _build(conf.voters, (*conf.learners, nid), urls, removed, conf.index)
    if change.op is ChangeOp.PROMOTE:
        if nid in conf.voters:
            raise ConfigError(f"{nid} is already a voter")
        if nid not in conf.learners:
            raise ConfigError(f"{nid} is not a learner of this cluster")
        learners = tuple(x for x in conf.learners if x != nid)
        return _build((*conf.voters, nid), learners, urls, conf.removed, conf.index)
    if change.op is ChangeOp.REMOVE:
        if nid not in conf.voters and nid not in conf.learners:
            raise ConfigError(f"{nid} is not a member of this cluster")
        voters = tuple(x for x in conf.voters if x != nid)
        if not voters:
            raise ConfigError(f"removing {nid} would leave no voter")
        learners = tuple(x for x in conf.learners if x != nid)
        urls.pop(nid, None)
        return _build(voters, learners, urls, (*conf.removed, nid), conf.index)
    raise ConfigError(f"unknown membership change {change.op!r}")  # pragma: no cover


def _build(
    voters: tuple[NodeId, ...],
    learners: tuple[NodeId, ...],
    urls: dict[NodeId, str],
    removed: tuple[NodeId, ...],
    index: Index,
) -> Membership:
    return Membership(
        voters=voters,
        learners=learners,
        urls=tuple(sorted(urls.items())),
        removed=removed,
        index=index,
    )


# ---------------------------------------------------------------------- JSON forms


def membership_to_json(conf: Membership) -> dict[str, Any]:
    return {
        "voters": list(conf.voters),
        "learners": list(conf.learners),
        "urls": dict(conf.urls),
        "removed": list(conf.removed),
        "index": conf.index,
    }


def _ids(d: dict[str, Any], key: str) -> tuple[NodeId, ...]:
    v = d.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) and 0 < len(x) <= _MAX_ID for x in v):
        raise MessageDecodeError(f"membership: {key!r} must be a list of node ids")
    if len(set(v)) != len(v):
        raise MessageDecodeError(f"membership: {key!r} lists an id twice")
    return tuple(v)


def membership_from_json(obj: object) -> Membership:
    """Validate and build; MessageDecodeError (a ValueError) when malformed."""
    if not isinstance(obj, dict) or set(obj) != {"voters", "learners", "urls", "removed", "index"}:
        raise MessageDecodeError(
            "membership must be an object with voters, learners, urls, removed, index"
        )
    voters, learners, removed = _ids(obj, "voters"), _ids(obj, "learners"), _ids(obj, "removed")
    if not voters:
        raise MessageDecodeError("membership: no voter")
    if set(voters) & set(learners) or set(removed) & (set(voters) | set(learners)):
        raise MessageDecodeError("membership: an id is in more than one of voters/learners/removed")
    urls = obj["urls"]
    if not isinstance(urls, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= _MAX_URL for k, v in urls.items()
    ):
        raise MessageDecodeError("membership: 'urls' must map ids to URL strings")
    index = obj["index"]
    if type(index) is not int or index < 0:
        raise MessageDecodeError("membership: 'index' must be a non-negative integer")
    return Membership(
        voters=voters,
        learners=learners,
        urls=tuple(sorted(urls.items())),
        removed=removed,
        index=index,
    )


def encode_change(change: ConfChange, result: Membership) -> bytes:
    """A CONFIG entry's data: the change and the configuration it results in."""
    body = {
        "op": change.op.value,
        "id": change.node_id,
        "url": change.url,
        "config": membership_to_json(result),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def decode_change(data: bytes, index: Index) -> tuple[ConfChange, Membership]:
    """Parse a CONFIG entry's data; the configuration's index is the entry's ``index``."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MessageDecodeError(f"config entry {index}: not JSON: {err}") from err
    if not isinstance(body, dict) or set(body) != {"op", "id", "url", "config"}:
        raise MessageDecodeError(f"config entry {index}: expected op, id, url, config")
    try:
        op = ChangeOp(body["op"])
    except ValueError:
        raise MessageDecodeError(f"config entry {index}: unknown op {body['op']!r}") from None
    if not isinstance(body["id"], str) or not isinstance(body["url"], str):
        raise MessageDecodeError(f"config entry {index}: id and url must be strings")
    conf = membership_from_json(body["config"])
    conf = Membership(
        voters=conf.voters,
        learners=conf.learners,
        urls=conf.urls,
        removed=conf.removed,
        index=index,
    )
    return ConfChange(op=op, node_id=body["id"], url=body["url"]), conf
