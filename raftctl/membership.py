"""membership.py — raftctl's side of membership changes (docs/membership.md).

``Members`` wraps the node API (``GET /v1/members``, ``POST /v1/admin/members``,
``POST /v1/admin/members/<id>/promote``, ``DELETE /v1/admin/members/<id>``) over ``KVClient``
(any replica; the nodes forward admin requests to the leader). A 4xx answer becomes a
``MemberError`` carrying the node's one-line reason.

``scale_up_one`` / ``scale_down`` are the steps of ``raftctl scale``: one server at a time,
each through the log. Up: start a replica with a new id and an empty disk (it joins, never
campaigns), add it as a learner, wait until it has caught up, promote it. Down: remove a voter
through the log (the leader last, after handing leadership to a voter that stays), then stop the
replica and delete its data. The target-specific part (starting and stopping replicas) is a
``ReplicaPool``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from raftctl.client import KVClient, NodeUnreachable, Transport
from raftctl.errors import NodeError, RaftctlError

__all__ = [
    "MemberError",
    "Members",
    "ReplicaPool",
    "next_replica_id",
    "scale_down",
    "scale_up_one",
]

_ORDINAL = re.compile(r"^(?P<name>.+)-(?P<i>\d+)$")
# 409 reasons that pass by themselves (another change committing, a learner catching up)
_TRANSIENT = ("not committed yet", "has not committed", "not caught up", "transfer")


class MemberError(NodeError):
    """The cluster refused a membership change (the message is the node's reason)."""


@dataclass(frozen=True)
class Config:
    """``GET /v1/members``: the configuration as the leader sees it."""

    members: tuple[dict[str, Any], ...]
    config_index: int
    removed: tuple[str, ...] = ()

    @property
    def voters(self) -> list[str]:
        return [m["id"] for m in self.members if m.get("role") == "voter"]

    @property
    def learners(self) -> list[str]:
        return [m["id"] for m in self.members if m.get("role") == "learner"]

    def member(self, node_id: str) -> dict[str, Any] | None:
        return next((m for m in self.members if m.get("id") == node_id), None)

    @classmethod
    def parse(cls, body: Any) -> Config:
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise RaftctlError(f"unexpected answer from GET /v1/members: {str(body)[:200]}")
        return cls(
            members=tuple(m for m in body["members"] if isinstance(m, dict)),
            config_index=int(body.get("config_index") or 0),
            removed=tuple(str(x) for x in body.get("removed") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "config_index": self.config_index,
            "removed": list(self.removed),
        }


class Members:
    """The membership API of one cluster (through any replica)."""

    def __init__(self, client: KVClient) -> None:
        self.client = client

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        # A change is a write: an answer lost after sending, or a 504, leaves it unknown
        # (OutcomeUnknown, exit 3) unless a retry settles it; never "failed" or "unavailable".
        # No X-Request-Id: admin changes are not deduplicated, so no relay may re-send them.
        reply = self.client.call(method, path, body=data, write=method != "GET", request_id=False)
        if reply.status == 200:
            return reply.body
        raise MemberError(
            f"{method} {path}: {reply.error} (HTTP {reply.status})", status=reply.status
        )

    def list(self) -> Config:
        return Config.parse(self._call("GET", "/v1/members"))

    def add(self, node_id: str, url: str, *, reuse_removed_id: bool = False) -> Config:
        query = "?force=true" if reuse_removed_id else ""
        body = {"id": node_id, "url": url}
        return Config.parse(self._call("POST", f"/v1/admin/members{query}", body))

    def promote(self, node_id: str, *, force: bool = False) -> Config:
        query = "?force=true" if force else ""
        return Config.parse(self._call("POST", f"/v1/admin/members/{node_id}/promote{query}"))

    def remove(self, node_id: str) -> Config:
        return Config.parse(self._call("DELETE", f"/v1/admin/members/{node_id}"))

    def leader(self) -> str | None:
        """The leader's id, from any replica's /v1/status."""
        for url in self.client.urls:
            try:
                body = self.client.status(url, timeout=2.0)
            except (NodeUnreachable, NodeError):
                continue
            if isinstance(body, dict) and isinstance(body.get("leader"), str):
                return str(body["leader"])
        return None

    def transfer(self, target: str) -> None:
        self._call("POST", "/v1/admin/transfer-leader", {"target": target})


class ReplicaPool(Protocol):
    """What a target does for scale: start replicas with new ids, stop them for good."""

    def next_id(self, conf: Config) -> str:
        """The id the next replica gets."""
        ...

    def start_replica(self, replica_id: str) -> tuple[str, str]:
        """Start a replica with empty data; (its URL for the cluster, its URL for raftctl)."""
        ...

    def stop_replicas(self, replica_ids: list[str], *, keep_data: bool) -> list[str]:
        """Stop replicas for good (delete their data unless ``keep_data``); what was done."""
        ...


def next_replica_id(conf: Config, known: list[str]) -> str:
    """A NEW id: one past the highest ordinal ever used (members, removed ids, replicas)."""
    best, name = -1, "raft"
    for nid in [*(m["id"] for m in conf.members), *conf.removed, *known]:
        m = _ORDINAL.match(str(nid))
        if m:
            name = m.group("name")
            best = max(best, int(m.group("i")))
    return f"{name}-{best + 1}"


def _wait(pred: Callable[[], bool], timeout: float, what: str, tick: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except (NodeUnreachable, NodeError):
            pass
        if time.monotonic() >= deadline:
            raise RaftctlError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(tick)


def _retry_409(fn: Callable[[], Config], timeout: float, what: str) -> Config:
    """Retry a change the cluster refuses for now (409: in flight / catching up; 503)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except MemberError as err:
            transient = err.status in (503, 504) or (
                err.status == 409 and any(t in err.message for t in _TRANSIENT)
            )
            if not transient or time.monotonic() >= deadline:
                raise MemberError(f"{what}: {err.message}", status=err.status) from err
        time.sleep(0.3)


def scale_up_one(
    members: Members,
    pool: ReplicaPool,
    conf: Config,
    token: str | None,
    timeout: float,
    progress: Callable[[str], None],
) -> Config:
    """Start a new replica, add it as a learner, wait until it caught up, promote it."""
    new_id = pool.next_id(conf)
    progress(f"{new_id}: starting a new replica (empty data, joining)")
    member_url, url = pool.start_replica(new_id)
    probe = Transport(timeout=2.0, token=token)
    try:
        _wait(
            lambda: probe.request(url, "GET", "/healthz").status == 200,
            timeout,
            f"{new_id} to serve at {url}",
        )
        progress(f"{new_id}: adding as a learner")
        reuse = new_id in conf.removed  # the pool vouched that its old data is gone
        _retry_409(
            lambda: members.add(new_id, member_url, reuse_removed_id=reuse),
            timeout,
            f"adding {new_id}",
        )
        progress(f"{new_id}: catching up")
        _wait(
            lambda: probe.request(url, "GET", "/readyz").status == 200,
            timeout,
            f"{new_id} to catch up",
        )
    finally:
        probe.close()
    progress(f"{new_id}: promoting to voter")
    return _retry_409(lambda: members.promote(new_id), timeout, f"promoting {new_id}")


def scale_down(
    members: Members,
    pool: ReplicaPool,
    conf: Config,
    voters: int,
    timeout: float,
    keep_data: bool,
    progress: Callable[[str], None],
) -> Config:
    """Remove the highest ordinals through the log, one at a time, the leader last (after a
    transfer to a voter that stays); then stop those replicas."""

    def ordinal(nid: str) -> int:
        m = _ORDINAL.match(nid)
        return int(m.group("i")) if m else -1

    victims = sorted(conf.voters, key=ordinal, reverse=True)[: len(conf.voters) - voters]
    leader = members.leader()
    victims.sort(key=lambda v: v == leader)
    for victim in victims:
        if members.leader() == victim:
            stay = [v for v in conf.voters if v not in victims]
            progress(f"{victim} leads: handing leadership to {stay[0]}")
            members.transfer(stay[0])
            _wait(
                lambda victim=victim: members.leader() not in (None, victim),  # type: ignore[misc]
                timeout,
                f"a new leader other than {victim}",
            )
        progress(f"{victim}: removing from the voters")
        conf = _retry_409(
            lambda victim=victim: members.remove(victim),  # type: ignore[misc]
            timeout,
            f"removing {victim}",
        )
        progress(f"voters now: {', '.join(conf.voters)}")
    for line in pool.stop_replicas(victims, keep_data=keep_data):
        progress(line)
    return conf
