"""verify.py — `raftctl verify [--chaos]`: the client validation workload, end to end.

Without --chaos it runs the workload once (works with --endpoints only: the chart's client Pod
uses it that way). With --chaos it runs: workload, kill the leader, workload, stop the leader's
node, workload, restore — and after every fault reads back every value acknowledged so far.
Exit code 0 only if every check passed.
"""

import uuid
from collections.abc import Callable
from typing import Annotated

import typer

from raftctl import chaos as faults, render
from raftctl.backends.base import Backend
from raftctl.errors import RaftctlError, UsageError
from raftctl.options import Globals, command
from raftctl.workload import Check, Workload, WorkloadAborted

__all__ = ["register"]


@command
def verify(
    g: Globals,
    with_chaos: Annotated[bool, typer.Option(
        "--chaos", help="also kill the leader and stop a node between workloads")] = False,
    writes: Annotated[int, typer.Option(min=2, max=1000, help="keys written per phase")] = 5,
    prefix: Annotated[str | None, typer.Option(
        help="key prefix (default: verify/<random run id>)", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(help="request deadline and fault timeout (s)")] = 30.0,
) -> None:
    """Writes, reads, an overwrite and compare-and-set, each line with index, term, leader."""
    if with_chaos and g.endpoints:
        raise UsageError("verify --chaos needs a target to inject faults (--target local|kind), "
                         "not --endpoints")
    backend = g.backend()
    try:
        _verify(g, backend, with_chaos, writes, prefix or f"verify/{uuid.uuid4().hex[:8]}", timeout)
    finally:
        backend.close()


def _verify(g: Globals, backend: Backend, with_chaos: bool, writes: int, prefix: str,
            timeout: float) -> None:
    counter = [0]

    def emit(check: Check) -> None:
        counter[0] += 1
        if not g.json:
            render.verify_check(counter[0], check)

    def event(text: str) -> None:
        if not g.json:
            render.verify_event(text)

    client = g.kv_client(backend, deadline=timeout)
    work = Workload(client, prefix, emit)
    reports: list[faults.FaultReport] = []
    try:
        _run(g, backend, work, with_chaos, writes, prefix, timeout, reports, emit, event)
    except WorkloadAborted as err:
        event(f"aborted: {err}")
    finally:
        client.close()
    failed = len(work.failed)
    render.verify_verdict(failed == 0, len(work.checks), failed, output=g.output,
                          checks=work.checks, faults=reports)
    if failed:
        raise typer.Exit(1)


def _run(g: Globals, backend: Backend, work: Workload, with_chaos: bool, writes: int,
         prefix: str, timeout: float, reports: list[faults.FaultReport],
         emit: Callable[[Check], None], event: Callable[[str], None]) -> None:
    event(f"workload 1 under {prefix}/")
    work.run_phase("phase-1", writes)
    if not with_chaos:
        return
    try:
        for fault, phase in (("kill", "phase-2"), ("stop", "phase-3")):
            event(f"fault: {'kill the leader' if fault == 'kill' else 'stop the leader node'}")
            try:
                report = faults.run_fault(backend, fault=fault, token=g.token, timeout=timeout)
            except RaftctlError as err:
                work.checks.append(Check("FAULT", fault, False, str(err)))
                emit(work.checks[-1])
                break
            reports.append(report)
            event(f"{report.action}: new leader {report.new_leader} after "
                  f"{_s(report.election_s)}, next write after {_s(report.write_s)}")
            event("every acknowledged value still readable?")
            work.check_acked()
            event(f"workload {phase[-1]}")
            work.run_phase(phase, writes)
    finally:
        event("restore")  # whatever happened, never leave a node stopped
        restored = faults.restore(backend, token=g.token, timeout=timeout)
        event(f"restored {', '.join(restored.restored) or 'nothing'}")
    event("final read-back of every acknowledged value")
    work.check_acked()


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Testing")(verify)
