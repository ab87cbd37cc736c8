"""base.py — the one interface every target implements.

Contract: a ``Backend`` knows how to bring a cluster up and down, which replicas it has and how to
reach each (``Replica.url``), and how to inject the two faults (``kill``: SIGKILL to the
replica's process, which the target restarts in place like a kubelet; ``stop``: freeze the
machine under it until ``restore``). It never prints: progress goes through a ``Reporter``.
Talking HTTP to the replicas is ``raftctl.client``'s job, not the backend's.

Every backend is a context manager (``Closing``): ``with g.backend() as backend:`` releases its
helpers (the kind target's ``kubectl port-forward`` processes) however the command ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, Self

__all__ = ["Backend", "Closing", "NullReporter", "Replica", "Reporter"]


@dataclass(frozen=True)
class Replica:
    """One replica as the target sees it."""

    id: str
    url: str
    state: str = "running"  # running | frozen | down | pending  (the target's view of the process)
    pod: str | None = None
    node: str | None = None
    pod_ip: str | None = None
    pid: int | None = None
    pod_ready: bool | None = None  # kind: the pod's Ready condition
    node_ready: bool | None = None  # kind: its Kubernetes node's Ready condition (None: unknown)


class Reporter(Protocol):
    """Receives progress while a backend works (render's spinner, or nothing)."""

    def step(self, text: str) -> None: ...


class NullReporter:
    """A reporter that drops every message."""

    def step(self, text: str) -> None:
        del text


class Closing:
    """Context-manager behaviour shared by every backend: ``close()`` on exit."""

    def close(self) -> None:
        """Release helpers; a backend without any keeps this no-op."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Backend(Protocol):
    """A place where a raftkv cluster runs."""

    target: str
    # monotonic time just before the last fault's signal (kill -9, docker pause, ...) was sent;
    # None when the backend does not record it (chaos then times from its call)
    last_signal: float | None

    def up(self, replicas: int | None, reporter: Reporter) -> bool:
        """Start the cluster (idempotent); True if it started something, False if it ran."""
        ...

    def down(self, purge: bool, reporter: Reporter) -> list[str]:
        """Stop the cluster (and with ``purge`` delete its data); returns what was done."""
        ...

    def replicas(self) -> list[Replica]:
        """The replicas of the running cluster; raises ``ClusterNotRunning``."""
        ...

    def kill(self, replica: Replica) -> str:
        """SIGKILL the replica's process (the target restarts it); returns what was done."""
        ...

    def stop(self, replica: Replica) -> str:
        """Freeze the machine under the replica until ``restore``; returns what was done."""
        ...

    def restore(self) -> list[str]:
        """Bring back everything ``stop`` froze; returns the replica ids (or nodes) restored."""
        ...

    def logs(self, replica_id: str, *, tail: int | None, follow: bool) -> Iterator[str]:
        """Lines of the replica's log (follow: keep yielding new lines)."""
        ...

    def close(self) -> None:
        """Release helpers (e.g. kubectl port-forwards)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...
