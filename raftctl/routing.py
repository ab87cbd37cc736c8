"""routing.py — the order in which a command tries the replicas (kind target).

Contract: ``request_order(replicas)`` asks every replica the target believes can answer for its
``/v1/status`` at once (``timeout`` bounds it) and orders them: the replica that answered as
leader first, then the others in the order they answered, then the ones that did not answer in
time, and last the ones the target knows cannot answer (process not running, node frozen or
NotReady). It returns as soon as a leader answers, so a healthy cluster costs one round trip; a
dead pod that Kubernetes still shows Ready costs at most ``timeout`` once, instead of a request
timeout on every command. The client still follows ``X-Raft-Leader`` after that.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence

from raftctl.backends.base import Replica
from raftctl.client import NodeUnreachable, Transport
from raftctl.errors import NodeError

__all__ = ["probe", "request_order", "usable"]


def usable(r: Replica) -> bool:
    """Whether the target believes the replica can answer."""
    return r.state == "running" and r.node_ready is not False


def probe(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 1.0
) -> tuple[str | None, list[str]]:
    """(the id of a replica that answered as leader, or None; ids that answered, in order)."""
    answers: queue.Queue[tuple[str, bool]] = queue.Queue()

    def ask(r: Replica) -> None:
        transport = Transport(timeout=timeout, token=token)
        try:
            reply = transport.request(r.url, "GET", "/v1/status")
            body = reply.body if reply.status == 200 else None
            role = body.get("role") if isinstance(body, dict) else None
            answers.put((r.id, str(role).lower() == "leader"))
        except (NodeUnreachable, NodeError, OSError):
            pass  # silent: ordered after those that answered
        finally:
            transport.close()

    for r in replicas:
        threading.Thread(target=ask, args=(r,), name=f"probe-{r.id}", daemon=True).start()
    answered: list[str] = []
    deadline = time.monotonic() + timeout
    while len(answered) < len(replicas):
        try:
            rid, leads = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        answered.append(rid)
        if leads:
            return rid, answered
    return None, answered


def request_order(
    replicas: Sequence[Replica], *, token: str | None = None, timeout: float = 1.0
) -> list[Replica]:
    """Leader first, then the replicas that answered, the silent ones, those that cannot."""
    good = [r for r in replicas if usable(r)]
    leader, answered = probe(good, token=token, timeout=timeout) if good else (None, [])
    rank = {rid: i for i, rid in enumerate(answered)}
    if leader is not None:
        rank[leader] = -1
    good.sort(key=lambda r: rank.get(r.id, len(rank)))  # stable among the silent
    return good + [r for r in replicas if not usable(r)]
