"""clusterview.py — one picture of a cluster: every replica's ``/v1/status``, fetched at once.

Contract: ``fetch_view`` asks every replica concurrently (one short-lived ``Transport`` per
replica, short timeout), never raises for a replica that does not answer — that replica's row
says ``unreachable`` (or what the target knows: ``frozen``, ``down``) — and derives:
the leader (the replica claiming leadership with the highest term, or the leader most replicas
name in that term), lag (leader's commit index minus the replica's last applied index) and a
health word per replica. ``wait_for_leader`` polls it until a leader is known and a quorum answers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from raftctl.backends.base import Replica
from raftctl.client import NodeUnreachable, Transport
from raftctl.errors import Unavailable

__all__ = ["ClusterView", "ReplicaStatus", "fetch_view", "wait_for_leader"]

LAGGING = 100  # entries behind the leader's commit index before a replica counts as lagging


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica's row."""

    replica: Replica
    reachable: bool
    error: str | None = None
    role: str | None = None
    term: int | None = None
    leader: str | None = None
    commit_index: int | None = None
    last_applied: int | None = None
    last_log_index: int | None = None
    lag: int | None = None
    health: str = "unknown"
    learners: tuple[str, ...] = ()  # the non-voting members in this replica's configuration

    @property
    def id(self) -> str:
        return self.replica.id

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.replica.id,
            "url": self.replica.url,
            "state": self.replica.state,
            "reachable": self.reachable,
            "role": self.role,
            "term": self.term,
            "leader": self.leader,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "last_log_index": self.last_log_index,
            "lag": self.lag,
            "health": self.health,
        }
        if self.replica.pod is not None:
            out.update(
                pod=self.replica.pod,
                node=self.replica.node,
                pod_ip=self.replica.pod_ip,
                pod_ready=self.replica.pod_ready,
                node_ready=self.replica.node_ready,
            )
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class ClusterView:
    """Every replica's row plus what they add up to."""

    rows: tuple[ReplicaStatus, ...]
    leader: str | None
    term: int | None

    @property
    def leader_row(self) -> ReplicaStatus | None:
        return next((r for r in self.rows if r.id == self.leader and r.reachable), None)

    @property
    def learners(self) -> tuple[ReplicaStatus, ...]:
        """Rows that do not vote: named as learners by the leader's configuration, or saying
        so themselves (a learner's /v1/status role)."""
        listed = set(self.leader_row.learners) if self.leader_row is not None else set()
        return tuple(r for r in self.rows if r.id in listed or r.role == "learner")

    @property
    def voters(self) -> tuple[ReplicaStatus, ...]:
        """The rows that count for quorum (every row that is not a learner)."""
        learners = {r.id for r in self.learners}
        return tuple(r for r in self.rows if r.id not in learners)

    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    @property
    def healthy_voters(self) -> int:
        return sum(1 for r in self.voters if r.health == "healthy")

    @property
    def healthy(self) -> bool:
        """A leader, and a majority of the VOTERS healthy (learners do not count)."""
        return self.leader_row is not None and self.healthy_voters >= self.quorum

    def row(self, replica_id: str) -> ReplicaStatus | None:
        return next((r for r in self.rows if r.id == replica_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "term": self.term,
            "healthy": self.healthy,
            "learners": [r.id for r in self.learners],
            "replicas": [r.to_json() for r in self.rows],
        }


def _int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) else None


def _fetch_one(replica: Replica, token: str | None, timeout: float) -> ReplicaStatus:
    transport = Transport(timeout=timeout, token=token)
    try:
        reply = transport.request(replica.url, "GET", "/v1/status")
    except NodeUnreachable as err:
        return ReplicaStatus(replica, reachable=False, error=err.why)
    finally:
        transport.close()
    body = reply.body
    if reply.status != 200 or not isinstance(body, dict):
        return ReplicaStatus(replica, reachable=False, error=reply.error)
    leader = body.get("leader")
    return ReplicaStatus(
        replica,
        reachable=True,
        role=str(body.get("role", "?")).lower(),
        term=_int(body, "term"),
        leader=leader if isinstance(leader, str) and leader else None,
        commit_index=_int(body, "commit_index"),
        last_applied=_int(body, "last_applied"),
        last_log_index=_int(body, "last_log_index"),
        learners=tuple(str(x) for x in body.get("learners") or () if isinstance(x, str)),
    )


def _leader_of(rows: Sequence[ReplicaStatus]) -> tuple[str | None, int | None]:
    live = [r for r in rows if r.reachable and r.term is not None]
    if not live:
        return None, None
    top = max(r.term or 0 for r in live)
    claimed = [r.id for r in live if r.role == "leader" and r.term == top]
    if claimed:
        return claimed[0], top
    named = Counter(r.leader for r in live if r.term == top and r.leader)
    if named:
        return named.most_common(1)[0][0], top
    return None, top


def _health(row: ReplicaStatus, leader_commit: int | None) -> tuple[int | None, str]:
    if row.replica.state == "frozen":
        return None, "frozen"
    if not row.reachable:
        return None, "down" if row.replica.state == "down" else "unreachable"
    lag = None
    if leader_commit is not None and row.last_applied is not None:
        lag = max(0, leader_commit - row.last_applied)
    if row.role != "leader" and row.leader is None:
        return lag, "no leader"
    if lag is not None and lag > LAGGING:
        return lag, "lagging"
    return lag, "healthy"


def fetch_view(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 2.0
) -> ClusterView:
    """Ask every replica for its status at once and combine the answers."""
    if not replicas:
        return ClusterView((), None, None)
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        raw = list(pool.map(lambda r: _fetch_one(r, token, timeout), replicas))
    leader, term = _leader_of(raw)
    leader_commit = next((r.commit_index for r in raw if r.id == leader and r.reachable), None)
    rows = []
    for row in raw:
        lag, health = _health(row, leader_commit)
        rows.append(_replace(row, lag=lag, health=health))
    return ClusterView(tuple(rows), leader, term)


def _replace(row: ReplicaStatus, **changes: Any) -> ReplicaStatus:
    data = asdict(row)
    data.update(changes)
    data["replica"] = row.replica
    return ReplicaStatus(**data)


def wait_for_leader(
    get_view: Callable[[], ClusterView],
    *,
    timeout: float,
    on_view: Callable[[ClusterView], None] | None = None,
    ready: Callable[[ClusterView], bool] | None = None,
) -> ClusterView:
    """Poll until ``ready(view)`` (default: a leader and a healthy quorum), else ``Unavailable``."""
    ready = ready or (lambda v: v.healthy)
    deadline = time.monotonic() + timeout
    view = get_view()
    while not ready(view):
        if on_view:
            on_view(view)
        if time.monotonic() > deadline:
            down = ", ".join(f"{r.id} {r.health}" for r in view.rows if r.health != "healthy")
            raise Unavailable(
                f"no healthy leader after {timeout:.0f}s" + (f" ({down})" if down else "")
            )
        time.sleep(0.1)
        view = get_view()
    return view
