"""endpoints.py — no target at all: a fixed list of node URLs (``--endpoints``/RAFTCTL_ENDPOINTS).

This is how the chart's client Pod runs ``raftctl verify --endpoints http://raft-0.raft-service:8000,...``.
It can read and write and show status; lifecycle and fault injection need a real target and fail
with a usage error that says so. Replica ids are the nodes' own ``/v1/status`` ids when they
answer, else ``endpoint-N``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from raftctl.backends.base import Closing, Replica, Reporter
from raftctl.client import NodeUnreachable, Transport, normalize_url
from raftctl.errors import NodeError, UsageError

__all__ = ["EndpointsBackend"]


class EndpointsBackend(Closing):
    """A cluster known only by its nodes' URLs."""

    target = "endpoints"
    last_signal: float | None = None

    def __init__(self, urls: Sequence[str], token: str | None = None) -> None:
        self.urls = [normalize_url(u) for u in urls if u.strip()]
        if not self.urls:
            raise UsageError("--endpoints needs at least one URL")
        self.token = token
        self._ids: dict[str, str] | None = None

    def _nope(self, what: str) -> UsageError:
        return UsageError(f"{what} needs a target (--target local|kind), not --endpoints")

    def up(self, replicas: int | None, reporter: Reporter) -> bool:
        raise self._nope("up")

    def down(self, purge: bool, reporter: Reporter) -> list[str]:
        raise self._nope("down")

    def replicas(self) -> list[Replica]:
        if self._ids is None:
            self._ids = {}
            transport = Transport(timeout=2.0, token=self.token)
            try:
                for i, url in enumerate(self.urls):
                    try:
                        body = transport.request(url, "GET", "/v1/status").body
                    except (NodeUnreachable, NodeError):
                        body = None
                    rid = body.get("id") if isinstance(body, dict) else None
                    self._ids[url] = rid if isinstance(rid, str) else f"endpoint-{i}"
            finally:
                transport.close()
        return [Replica(id=self._ids[u], url=u) for u in self.urls]

    def kill(self, replica: Replica) -> str:
        raise self._nope("chaos kill-leader")

    def stop(self, replica: Replica) -> str:
        raise self._nope("chaos stop-node")

    def restore(self) -> list[str]:
        raise self._nope("chaos restore")

    def logs(self, replica_id: str, *, tail: int | None, follow: bool) -> Iterator[str]:
        raise self._nope("logs")
