"""faultplan.py — the faults ``raftctl verify --chaos`` injects while the clients run.

Contract: ``FaultPlan.run(stop_at)`` (in its own thread) injects one fault every ``interval``
seconds, cycling through ``faults``, until ``stop_at`` (monotonic):
- ``kill-leader``: ``backend.kill(leader)`` (local: SIGKILL, the supervisor restarts it; kind:
  force-delete the pod, the StatefulSet recreates it); the window ends when the victim answers
  ``/v1/status`` again;
- ``stop-node``: ``backend.stop(leader)`` (local: SIGSTOP; kind: ``docker stop`` of its node), held
  for ``hold`` seconds, then ``backend.restore()``; the window ends at the restore.
Faults go through the ``Backend`` interface only, so they work on every target. ``restart_all``
kills every replica at once (a full-cluster crash: each comes back with its data) and waits until
all answer and one leader exists — the durability check. Every fault becomes a ``FaultWindow``
(monotonic start/end, victim, what was done); a fault that could not be injected (no leader at
that moment) is recorded with ``error``. Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from raftctl.backends.base import Backend, Replica
from raftctl.clusterview import ClusterView, fetch_view
from raftctl.errors import RaftctlError

__all__ = ["FAULTS", "FaultPlan", "FaultWindow", "restart_all", "wait_all_up"]

FAULTS = ("kill-leader", "stop-node")
POLL = 0.1


@dataclass
class FaultWindow:
    """One injected fault: from injection until the victim is back (or restored)."""

    kind: str
    victim: str
    start: float
    end: float | None = None
    action: str = ""
    error: str | None = None

    def to_json(self, origin: float) -> dict[str, Any]:
        return {
            "kind": self.kind, "victim": self.victim, "action": self.action,
            "start": round(self.start - origin, 3),
            "end": None if self.end is None else round(self.end - origin, 3),
            "error": self.error,
        }  # fmt: skip


def _view(backend: Backend, token: str | None) -> ClusterView:
    return fetch_view(backend.replicas(), token=token, timeout=0.5)


def wait_all_up(backend: Backend, token: str | None, timeout: float) -> ClusterView | None:
    """Poll until every replica answers and they agree on a leader; None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            view = _view(backend, token)
        except RaftctlError:
            view = None
        if view is not None and view.leader_row is not None and all(r.reachable for r in view.rows):
            return view
        time.sleep(POLL)
    return None


class FaultPlan:
    """Injects faults on a schedule and remembers each window."""

    def __init__(
        self,
        backend: Backend,
        *,
        token: str | None,
        faults: Sequence[str],
        interval: float,
        hold: float,
        recover_timeout: float = 30.0,
        on_event: Callable[[str], None] = lambda _: None,
    ) -> None:
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}")
        self.backend = backend
        self.token = token
        self.faults = list(faults)
        self.interval = interval
        self.hold = hold
        self.recover_timeout = recover_timeout
        self.on_event = on_event
        self.windows: list[FaultWindow] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, stop_at: float) -> None:
        """Inject faults until ``stop_at``; always restores what it stopped."""
        i = 0
        next_at = time.monotonic() + self.interval / 2
        try:
            while not self._stop.is_set():
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
                # leave time for the fault to heal before the clients stop
                if time.monotonic() + self.hold + 1.0 > stop_at:
                    break
                self._inject(self.faults[i % len(self.faults)])
                i += 1
                next_at = max(next_at + self.interval, time.monotonic() + 1.0)
        finally:
            self._restore_all()

    def _leader(self) -> Replica | None:
        try:
            row = _view(self.backend, self.token).leader_row
        except RaftctlError:
            return None
        return row.replica if row is not None else None

    def _inject(self, kind: str) -> None:
        victim = self._leader()
        now = time.monotonic()
        if victim is None:
            self.windows.append(FaultWindow(kind, "-", now, now, error="no leader to fault"))
            self.on_event(f"{kind}: skipped, no leader at that moment")
            return
        window = FaultWindow(kind, victim.id, now)
        self.windows.append(window)
        try:
            if kind == "kill-leader":
                window.action = self.backend.kill(victim)
                self.on_event(f"{kind}: {window.action}")
                self._wait_back(victim, window)
            else:
                window.action = self.backend.stop(victim)
                self.on_event(f"{kind}: {window.action}")
                self._stop.wait(self.hold)
                restored = self.backend.restore()
                window.end = time.monotonic()
                self.on_event(f"{kind}: restored {', '.join(restored) or 'nothing'}")
        except RaftctlError as err:
            window.error = str(err)
            window.end = window.end or time.monotonic()
            self.on_event(f"{kind}: failed: {err}")

    def _wait_back(self, victim: Replica, window: FaultWindow) -> None:
        deadline = window.start + self.recover_timeout
        time.sleep(POLL)
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                current = next((r for r in self.backend.replicas() if r.id == victim.id), victim)
                row = fetch_view([current], token=self.token, timeout=0.5).rows[0]
            except RaftctlError:
                row = None
            if row is not None and row.reachable:
                window.end = time.monotonic()
                return
            time.sleep(POLL)
        window.end = time.monotonic()
        window.error = f"{victim.id} not back within {self.recover_timeout:.0f}s"

    def _restore_all(self) -> None:
        try:
            self.backend.restore()
        except RaftctlError as err:
            self.on_event(f"restore failed: {err}")


def restart_all(
    backend: Backend,
    *,
    token: str | None,
    timeout: float,
    on_event: Callable[[str], None] = lambda _: None,
) -> FaultWindow:
    """Kill every replica at once; each comes back with its data. Wait for all and a leader."""
    replicas = backend.replicas()
    window = FaultWindow("restart-all", ",".join(r.id for r in replicas), time.monotonic())
    actions = [backend.kill(r) for r in replicas]
    window.action = "; ".join(actions)
    on_event(f"restart-all: {window.action}")
    view = wait_all_up(backend, token, timeout)
    window.end = time.monotonic()
    if view is None:
        window.error = f"the cluster was not back (all replicas, one leader) within {timeout:.0f}s"
    return window
