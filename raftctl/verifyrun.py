"""verifyrun.py — one ``raftctl verify`` run: load, faults, restart, checks, figures.

Contract: ``run_verify(backend, settings)`` runs, in order:
1. ``settings.clients`` concurrent clients (``recorder.Recorder``) for ``settings.duration`` s
   while, with ``chaos``, ``faultplan.FaultPlan`` kills and stops the leader on a schedule;
2. replica agreement (``agreement.check_agreement``) once the clients stopped;
3. durability: with ``restart`` (a target is needed: local/kind) every replica is killed at once
   and comes back from its disk; then every key is read again (linearizable GET, retried until a
   replica answers) and those reads join the history, so an acknowledged write lost in the
   restart shows up as a linearizability violation of a final read; agreement is checked again;
4. the linearizability check of the whole history (``linearizability.check``), per key, starting
   from each key's value read just before the run (absent for the default fresh ``--prefix``);
5. the figures: operations by outcome, availability (share of operations acknowledged), longest
   outage (longest time without any acknowledged operation), latency p50/p99 of acknowledged ones.
``RunResult.passed`` is True only if the history is linearizable (no key inconclusive), every
final read got an answer, and every agreement check passed (a skipped one is noted, not failed:
nodes without ``/v1/admin/hash``). Progress goes to ``on_event``; nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftctl.agreement import Agreement, check_agreement
from raftctl.backends.base import Backend
from raftctl.client import Transport
from raftctl.errors import Unavailable
from raftctl.faultplan import FaultPlan, FaultWindow, restart_all, wait_all_up
from raftctl.linearizability import CheckResult, Kind, Operation, Status, check, describe
from raftctl.recorder import Observation, Recorder, ops_json

__all__ = ["Figures", "RunResult", "Settings", "compute_figures", "run_verify"]


@dataclass(frozen=True)
class Settings:
    clients: int = 8
    keys: int = 5
    duration: float = 30.0
    chaos: bool = False
    faults: tuple[str, ...] = ("kill-leader", "stop-node")
    fault_interval: float = 8.0
    hold: float = 3.0
    restart: bool = False
    op_timeout: float = 2.0
    timeout: float = 60.0
    prefix: str = "verify"
    seed: int | None = None
    max_steps: int = 2_000_000


@dataclass(frozen=True)
class Figures:
    ops: int
    ok: int
    failed: int
    unknown: int
    by_kind: dict[str, dict[str, int]]
    availability: float
    longest_outage_s: float
    p50_ms: float | None
    p99_ms: float | None
    throughput: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def compute_figures(ops: Sequence[Operation], start: float, end: float) -> Figures:
    """Counts, availability, longest outage and latency of ``ops`` over [start, end]."""
    by_kind: dict[str, dict[str, int]] = {}
    for op in ops:
        row = by_kind.setdefault(op.kind.value, {"ok": 0, "failed": 0, "unknown": 0})
        row[op.status.value] += 1
    ok = [op for op in ops if op.status is Status.OK]
    n_failed = sum(1 for op in ops if op.status is Status.FAILED)
    latencies = sorted(((op.complete or op.invoke) - op.invoke) * 1000 for op in ok)
    done = sorted(op.complete for op in ok if op.complete is not None)
    gaps = [b - a for a, b in zip([start, *done], [*done, end], strict=True)]
    span = max(end - start, 1e-9)
    return Figures(
        ops=len(ops), ok=len(ok), failed=n_failed, unknown=len(ops) - len(ok) - n_failed,
        by_kind=by_kind,
        availability=len(ok) / len(ops) if ops else 0.0,
        longest_outage_s=max(gaps) if gaps else span,
        p50_ms=_percentile(latencies, 0.50), p99_ms=_percentile(latencies, 0.99),
        throughput=len(ok) / span,
    )  # fmt: skip


@dataclass
class RunResult:
    settings: Settings
    target: str
    origin: float
    end: float
    operations: list[Operation]
    final_reads: list[Operation]
    observations: list[Observation]
    faults: list[FaultWindow]
    check: CheckResult
    agreements: list[tuple[str, Agreement]]
    figures: Figures
    notes: list[str] = field(default_factory=list)

    @property
    def durability_ok(self) -> bool | None:
        """True: every key was read back after the restart and the reads are consistent with the
        history; False: a read failed or was inconsistent; None: no restart was done."""
        if not self.settings.restart:
            return None
        if not self.final_reads_complete:
            return False
        final_ids = {op.id for op in self.final_reads}
        return not any(
            v.culprit is not None and v.culprit.id in final_ids for v in self.check.violations
        )

    @property
    def final_reads_complete(self) -> bool:
        answered = {op.key for op in self.final_reads if op.status is Status.OK}
        keys = {op.key for op in self.operations}
        return keys <= answered

    def read_back(self) -> list[dict[str, Any]]:
        """Per key: the last acknowledged write (by completion time) and the value read back at
        the end. They may differ legitimately (writes that overlapped in time may take effect in
        either order; a write of unknown outcome may come later): the linearizability check
        decides, this is for the reader."""
        out = []
        for key in sorted({op.key for op in self.final_reads}):
            acked = [
                op
                for op in self.operations
                if op.key == key
                and op.status is Status.OK
                and op.complete is not None
                and (op.kind is Kind.PUT or (op.kind in (Kind.CAS, Kind.DELETE) and op.applied))
            ]
            last = max(acked, key=lambda op: op.complete or 0.0, default=None)
            reads = [op for op in self.final_reads if op.key == key and op.status is Status.OK]
            later_unknown = last is not None and any(
                op.key == key
                and op.status is Status.UNKNOWN
                and op.kind is not Kind.GET
                and op.invoke > (last.invoke)
                for op in self.operations
            )
            out.append(
                {
                    "key": key,
                    "last_acknowledged": None
                    if last is None
                    else (None if last.kind is Kind.DELETE else last.value),
                    "last_acknowledged_op": None if last is None else describe(last, self.origin),
                    "read_back": reads[-1].result if reads else None,
                    "answered": bool(reads),
                    "unknown_writes_after_it": later_unknown,
                }
            )
        return out

    @property
    def passed(self) -> bool:
        return (
            self.check.linearizable
            and self.final_reads_complete
            and all(a.ok is not False for _, a in self.agreements)
            and self.durability_ok is not False
        )

    def to_json(self) -> dict[str, Any]:
        o = self.origin
        v = self.check.first_violation
        return {
            "passed": self.passed,
            "target": self.target,
            "settings": dict(self.settings.__dict__),
            "figures": self.figures.to_json(),
            "faults": [w.to_json(o) for w in self.faults],
            "linearizable": self.check.linearizable,
            "violation": None if v is None else v.to_json(o),
            "keys": [k.to_json(o) for k in self.check.keys],
            "durability": {
                "ok": self.durability_ok,
                "restart": self.settings.restart,
                "keys": self.read_back(),
                "final_reads": [describe(op, o) for op in self.final_reads],
            },
            "agreement": [{"when": when, **a.to_json()} for when, a in self.agreements],
            "notes": self.notes,
            "history": ops_json([*self.operations, *self.final_reads], o),
            "observations": [
                {"t": round(x.t - o, 3), "leader": x.leader, "term": x.term}
                for x in self.observations
            ],
        }


def _read_all(recorder: Recorder, keys: Sequence[str], timeout: float) -> list[Operation]:
    """Read every key until a replica answers it (each attempt is recorded)."""
    out: list[Operation] = []
    transport = Transport(timeout=recorder.op_timeout, token=recorder.token)
    try:
        for key in keys:
            deadline = time.monotonic() + timeout
            url = recorder.urls[0]
            while True:
                op, reply = recorder.perform(-1, transport, url, Kind.GET, key)
                out.append(op)
                if op.status is Status.OK or time.monotonic() > deadline:
                    break
                leader = reply.leader if reply is not None else None
                url = (
                    recorder.ids.get(leader or "", "")
                    or recorder.urls[(recorder.urls.index(url) + 1) % len(recorder.urls)]
                )
                time.sleep(0.1)
    finally:
        transport.close()
    return out


def run_verify(
    backend: Backend,
    settings: Settings,
    *,
    token: str | None,
    on_event: Callable[[str], None] = lambda _: None,
    on_tick: Callable[[float, int], None] | None = None,
) -> RunResult:
    """The whole run (see the module docstring)."""
    replicas = backend.replicas()
    recorder = Recorder(
        [r.url for r in replicas],
        clients=settings.clients,
        keys=settings.keys,
        prefix=settings.prefix,
        token=token,
        op_timeout=settings.op_timeout,
        seed=settings.seed,
        ids={r.id: r.url for r in replicas},
    )
    notes: list[str] = []
    if settings.clients > 12 * settings.keys:
        notes.append(
            f"{settings.clients / settings.keys:.0f} clients per key: above about a "
            "dozen, the linearizability search may give up (inconclusive); use more "
            "--keys"
        )
    windows: list[FaultWindow] = []
    # The keys' values before the run (absent for a fresh --prefix): the checker's initial state.
    first = _read_all(recorder, recorder.key_names, settings.timeout)
    initial: dict[str, str | None] = {}
    for key in recorder.key_names:
        answered = [op for op in first if op.key == key and op.status is Status.OK]
        if not answered:
            raise Unavailable(
                f"could not read {key} before the run: no replica answered "
                f"within {settings.timeout:.0f}s (see `raftctl status`)"
            )
        initial[key] = answered[-1].result
    del recorder.operations[:]
    recorder.observations.clear()
    origin = time.monotonic()
    plan: FaultPlan | None = None
    thread: threading.Thread | None = None
    if settings.chaos:
        plan = FaultPlan(
            backend,
            token=token,
            faults=settings.faults,
            interval=settings.fault_interval,
            hold=settings.hold,
            recover_timeout=settings.timeout,
            on_event=on_event,
        )
        thread = threading.Thread(
            target=plan.run, args=(origin + settings.duration,), name="verify-faults", daemon=True
        )
        thread.start()
    on_event(
        f"{settings.clients} clients for {settings.duration:g}s over {settings.keys} keys "
        f"under {settings.prefix}/" + (" with faults" if settings.chaos else "")
    )
    try:
        recorder.run(settings.duration, on_tick)
    finally:
        if plan is not None and thread is not None:
            plan.stop()
            thread.join(timeout=settings.timeout + settings.hold + 5)
            windows.extend(plan.windows)
    end = time.monotonic()
    operations = list(recorder.operations)
    figures = compute_figures(operations, origin, end)
    on_event(
        f"{figures.ops} operations: {figures.ok} ok, {figures.failed} failed, "
        f"{figures.unknown} unknown outcome"
    )
    if settings.chaos and not any(w.error is None for w in windows):
        notes.append("no fault could be injected during the run (duration too short?)")

    agreements: list[tuple[str, Agreement]] = []
    if wait_all_up(backend, token, settings.timeout) is None:
        notes.append(f"not every replica was back with a leader within {settings.timeout:.0f}s")
    on_event("replica agreement (GET /v1/admin/hash on every replica)")
    agreements.append(
        (
            "after the workload",
            check_agreement(backend.replicas(), token=token, timeout=settings.timeout),
        )
    )
    if settings.restart:
        on_event("durability: restarting every replica at once")
        window = restart_all(backend, token=token, timeout=settings.timeout, on_event=on_event)
        windows.append(window)
        if window.error:
            notes.append(window.error)
        replicas = backend.replicas()
        recorder.urls = [r.url for r in replicas]
        recorder.ids = {r.id: r.url for r in replicas}
    else:
        notes.append(
            "durability after a full restart not checked"
            + (
                " (needs a target: --target local|kind, not --endpoints)"
                if backend.target == "endpoints"
                else " (use --restart or --chaos)"
            )
        )
    on_event("reading every key back")
    before_final = len(recorder.operations)
    _read_all(recorder, recorder.key_names, settings.timeout)
    final_reads = recorder.operations[before_final:]
    if settings.restart:
        agreements.append(
            (
                "after the full restart",
                check_agreement(backend.replicas(), token=token, timeout=settings.timeout),
            )
        )
    on_event("checking linearizability, key by key")
    result = check(
        [*operations, *final_reads], max_steps=settings.max_steps, origin=origin, initial=initial
    )
    for k in result.inconclusive:
        notes.append(k.explanation)
    return RunResult(
        settings=settings,
        target=backend.target,
        origin=origin,
        end=end,
        operations=operations,
        final_reads=final_reads,
        observations=sorted(recorder.observations, key=lambda x: x.t),
        faults=windows,
        check=result,
        agreements=agreements,
        figures=figures,
        notes=notes,
    )
