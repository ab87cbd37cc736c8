"""faults.py — inject one fault into a running cluster and measure how it heals.

Contract: ``run_fault`` takes a view of the cluster, picks the victim (the leader unless told),
injects the fault through the backend (``kill``, ``stop``, or any ``inject`` callable such as the
kind target's ``delete_pod``) and then, concurrently:
- polls every replica's status until a leader with a higher term than before is seen
  (→ ``election_s``; never later than the acknowledged write below, which proves a new leader
  existed);
- retries one write (one request id, so it is applied at most once) until it is acknowledged
  (→ ``write_s``);
- unless the fault is ``stop``, waits until the victim answers again and has applied everything
  up to that acknowledged write (→ ``recovered_s``). A stopped (frozen) victim stays down until
  ``restore``.
Every time is measured from the signal: ``backend.last_signal`` when the backend records it (the
kind target's lookups before ``kill -9`` or ``docker pause`` are not part of the fault), else the
moment ``inject`` was called. Timings come from ``time.monotonic``. ``restore`` resumes what was
stopped, measures each replica's way back the same way, and names what is still pending at its
deadline and why. Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raftctl.backends.base import Backend, Replica
from raftctl.client import KVClient
from raftctl.clusterview import ClusterView, ReplicaStatus, fetch_view
from raftctl.errors import RaftctlError, Unavailable, UnknownReplica

__all__ = ["FaultReport", "RestoreReport", "restore", "run_fault"]

POLL = 0.05


@dataclass
class FaultReport:
    """What one fault did and how long the cluster took to heal."""

    fault: str
    action: str
    victim: str
    old_leader: str
    old_term: int | None
    new_leader: str | None = None
    new_term: int | None = None
    election_s: float | None = None
    write_s: float | None = None
    write_index: int | None = None
    recovered_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RestoreReport:
    """Which replicas ``restore`` brought back and when each caught up."""

    restored: list[str]
    caught_up_s: dict[str, float | None] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # not back at the deadline: why
    timeout_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": self.restored,
            "caught_up_s": self.caught_up_s,
            "pending": self.pending,
            "timeout_s": self.timeout_s,
        }


def _pick(view: ClusterView, replica_id: str | None) -> Replica:
    if replica_id is None:
        row = view.leader_row
        if row is None:
            raise Unavailable(
                "the cluster has no leader right now; nothing to fault (see `raftctl status`)"
            )
        return row.replica
    row = view.row(replica_id)
    if row is None:
        known = ", ".join(r.id for r in view.rows)
        raise UnknownReplica(f"unknown replica {replica_id!r} (replicas: {known})")
    return row.replica


def run_fault(
    backend: Backend,
    *,
    fault: str,
    replica_id: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
    on_progress: Callable[[str], None] = lambda _: None,
    inject: Callable[[Replica], str] | None = None,
) -> FaultReport:
    """Inject ``fault`` ("kill", "stop", or a name for ``inject``) and measure the healing."""
    replicas = backend.replicas()
    before = fetch_view(replicas, token=token)
    if before.leader is None:
        raise Unavailable("the cluster has no leader right now; wait for one (`raftctl status`)")
    victim = _pick(before, replica_id)
    if fault == "stop" and victim.state == "frozen":
        raise RaftctlError(f"{victim.id} is already stopped; run `raftctl chaos restore` first")
    if inject is None:
        inject = backend.kill if fault == "kill" else backend.stop
    report = FaultReport(
        fault={"kill": "kill-leader", "stop": "stop-node"}.get(fault, fault),
        action="",
        victim=victim.id,
        old_leader=before.leader,
        old_term=before.term,
    )
    others = [r for r in replicas if r.id != victim.id]
    writer = KVClient(
        [r.url for r in others] or [victim.url],
        ids={r.id: r.url for r in others},
        token=token,
        timeout=1.0,
        deadline=timeout,
    )
    write_result: dict[str, Any] = {}

    def probe_write() -> None:
        try:
            reply = writer.put(f"raftctl/chaos/{int(time.time() * 1000)}", report.fault)
            write_result["s"] = time.monotonic() - t0
            write_result["index"] = (
                reply.index
                if reply.index is not None
                else (reply.body.get("index") if isinstance(reply.body, dict) else None)
            )
        except RaftctlError as err:
            write_result["error"] = str(err)
        finally:
            writer.close()

    verb = {"kill": "killing", "stop": "stopping"}.get(fault, f"{fault}:")
    on_progress(f"{verb} {victim.id}")
    backend.last_signal = None
    called = time.monotonic()
    report.action = inject(victim)
    t0 = backend.last_signal if backend.last_signal is not None else called
    thread = threading.Thread(target=probe_write, name="chaos-write", daemon=True)
    thread.start()

    was_leader = victim.id == before.leader
    on_progress("waiting for a new leader" if was_leader else "checking the leader")
    deadline = t0 + timeout
    old_term = before.term or 0
    while time.monotonic() < deadline:
        view = fetch_view(others, token=token, timeout=0.5)
        # A follower's fault elects nobody: then the measure is "a leader is still there".
        if view.leader is not None and ((view.term or 0) > old_term or not was_leader):
            report.election_s = time.monotonic() - t0
            report.new_leader, report.new_term = view.leader, view.term
            break
        time.sleep(POLL)
    else:
        report.notes.append(f"no new leader within {timeout:.0f}s")

    on_progress("waiting for the next acknowledged write")
    thread.join(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    report.write_s = write_result.get("s")
    report.write_index = write_result.get("index")
    if report.write_s is not None and report.election_s is not None and was_leader:
        # An acknowledged write after the leader died proves a new leader existed by then;
        # status polling may only have noticed it a little later.
        report.election_s = min(report.election_s, report.write_s)
    if "error" in write_result:
        report.notes.append(f"write failed: {write_result['error']}")

    if fault != "stop":
        on_progress(f"waiting for {victim.id} to come back and catch up")
        target = report.write_index
        while time.monotonic() < deadline:
            view = fetch_view(backend.replicas(), token=token, timeout=0.5)
            row = view.row(victim.id)
            applied = row.last_applied if row and row.reachable else None
            goal = (
                target
                if target is not None
                else (view.leader_row.commit_index if view.leader_row else None)
            )
            if applied is not None and goal is not None and applied >= goal:
                report.recovered_s = time.monotonic() - t0
                break
            time.sleep(POLL)
        else:
            report.notes.append(f"{victim.id} not back within {timeout:.0f}s")
    else:
        report.notes.append(f"{victim.id} stays frozen until `raftctl chaos restore`")
    return report


def restore(backend: Backend, *, token: str | None = None, timeout: float = 60.0) -> RestoreReport:
    """Resume everything ``stop`` froze and wait until each of them has caught up."""
    t0 = time.monotonic()
    restored = backend.restore()
    report = RestoreReport(restored=restored, timeout_s=timeout)
    if not restored:
        return report
    pending = set(restored)
    why: dict[str, str] = {}
    deadline = t0 + timeout
    while pending and time.monotonic() < deadline:
        try:
            view = fetch_view(backend.replicas(), token=token, timeout=0.5)
        except RaftctlError as err:  # e.g. the API server is still coming back
            why = {rid: str(err) for rid in pending}
            time.sleep(max(POLL, 0.5))
            continue
        leader = view.leader_row
        for rid in sorted(pending):
            row = view.row(rid) or next((r for r in view.rows if r.replica.node == rid), None)
            reason = _not_back(row, leader)
            if reason is None:
                report.caught_up_s[rid] = time.monotonic() - t0
                pending.discard(rid)
            else:
                why[rid] = reason
        if pending:
            time.sleep(POLL)
    for rid in sorted(pending):
        report.caught_up_s[rid] = None
        report.pending[rid] = why.get(rid, "not checked before the deadline")
    return report


def _not_back(row: ReplicaStatus | None, leader: ReplicaStatus | None) -> str | None:
    """Why a restored replica does not count as back yet (None: it is back and caught up)."""
    if row is None:
        return "no replica listed for it"
    r = row.replica
    where = f"{r.id}" + (f" on {r.node}" if r.node else "")
    if r.node_ready is False:
        return f"{where}: node NotReady"
    if r.state != "running":
        return f"{where}: {r.state}"
    if not row.reachable:
        return f"{where}: not answering ({row.error or 'unreachable'})"
    if leader is None or leader.commit_index is None:
        return f"{where}: answering, but no leader yet"
    if row.last_applied is None or row.last_applied < leader.commit_index:
        return f"{where}: applied {row.last_applied} of {leader.commit_index}"
    return None
