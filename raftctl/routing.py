"""routing.py — the order in which a command tries the replicas (kind target).

Contract: ``request_order(replicas)`` puts first the replica that a quick status probe names as
the leader, then the other replicas that can answer, and last the ones the target knows cannot
(process not running, node frozen, node NotReady): a client then never waits for a timeout on a
dead pod while a live leader exists. The probe asks every usable replica at once and stops at the
first answer that names a leader it knows (``timeout`` bounds it; slow replicas are not waited
for). The client still follows ``X-Raft-Leader`` after that.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from raftctl.backends.base import Replica
from raftctl.client import NodeUnreachable, Transport
from raftctl.errors import NodeError

__all__ = ["probe_leader", "request_order", "usable"]


def usable(r: Replica) -> bool:
    """Whether the target believes the replica can answer."""
    return r.state == "running" and r.node_ready is not False


def probe_leader(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 1.0
) -> str | None:
    """The leader id named first by any of ``replicas`` within ``timeout`` (None if none)."""
    ids = {r.id for r in replicas}
    answers: queue.Queue[str | None] = queue.Queue()

    def ask(r: Replica) -> None:
        transport = Transport(timeout=timeout, token=token)
        try:
            body = transport.request(r.url, "GET", "/v1/status").body
            leader = body.get("leader") if isinstance(body, dict) else None
            answers.put(leader if isinstance(leader, str) and leader in ids else None)
        except (NodeUnreachable, NodeError, OSError):
            answers.put(None)
        finally:
            transport.close()

    for r in replicas:
        threading.Thread(target=ask, args=(r,), name=f"probe-{r.id}", daemon=True).start()
    for _ in replicas:
        try:
            leader = answers.get(timeout=timeout + 0.5)
        except queue.Empty:
            return None
        if leader is not None:
            return leader
    return None


def request_order(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 1.0
) -> list[Replica]:
    """Leader first, then the replicas that can answer, then the ones that cannot."""
    good = [r for r in replicas if usable(r)]
    bad = [r for r in replicas if not usable(r)]
    leader = probe_leader(good, token=token, timeout=timeout) if good else None
    good.sort(key=lambda r: r.id != leader)  # stable: the leader moves to the front
    return good + bad
