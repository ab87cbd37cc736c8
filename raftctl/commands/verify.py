"""verify.py — `raftctl verify`: prove linearizability, durability and replica agreement.

Default: ``--clients`` concurrent clients do random get/put/delete/CAS for ``--duration`` seconds
(with ``--chaos`` while the leader is killed and stopped on a schedule), then replica agreement,
durability after a full restart (``--restart``, on by default with ``--chaos``), and a per-key
linearizability check of the whole history (raftctl.verifyrun). Verdict with figures, exit 1 on
any violation; ``--report FILE.html|.png`` draws the run.

``--sequential``: the original assignment's client workload (writes, reads, an overwrite, CAS,
delete, listing — one line per operation with index, term and leader); with ``--chaos`` it runs:
workload, kill the leader, workload, stop the leader's node, workload, restore — and after every
fault reads back every value acknowledged so far. The chart's client Pod runs this one.
Exit code 0 only if every check passed.
"""

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from raftctl import faults, render
from raftctl.backends.base import Backend
from raftctl.errors import RaftctlError, UsageError
from raftctl.faultplan import FAULTS
from raftctl.options import Globals, GlobalsCommand
from raftctl.verifyreport import check_report_path, write_report
from raftctl.verifyrun import Settings, run_verify
from raftctl.workload import Check, Workload, WorkloadAborted

__all__ = ["register"]


def verify(
    ctx: typer.Context,
    with_chaos: Annotated[
        bool,
        typer.Option(
            "--chaos", help="inject faults while the clients run (kill the leader, stop its node)"
        ),
    ] = False,
    clients: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients")] = 8,
    duration: Annotated[float, typer.Option(min=1.0, help="seconds of load")] = 30.0,
    keys: Annotated[int, typer.Option(min=1, max=1000, help="keys the clients share")] = 5,
    fault_list: Annotated[
        str, typer.Option("--faults", help=f"faults to cycle through ({', '.join(FAULTS)})")
    ] = ",".join(FAULTS),
    fault_interval: Annotated[
        float, typer.Option(min=1.0, help="seconds between fault injections")
    ] = 8.0,
    hold: Annotated[
        float, typer.Option(min=0.1, help="seconds a stopped node stays stopped")
    ] = 3.0,
    restart: Annotated[
        bool | None,
        typer.Option(
            "--restart/--no-restart",
            help="restart every replica before the final read-back "
            "(durability) [default: with --chaos]",
            show_default=False,
        ),
    ] = None,
    op_timeout: Annotated[
        float, typer.Option(min=0.1, help="per-operation timeout (s); no answer = unknown outcome")
    ] = 2.0,
    seed: Annotated[int | None, typer.Option(help="random seed for the clients")] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="also draw the run into FILE.html or FILE.png", show_default=False),
    ] = None,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential", help="run the assignment's sequential client workload instead"
        ),
    ] = False,
    writes: Annotated[
        int, typer.Option(min=2, max=1000, help="--sequential: keys written per phase")
    ] = 5,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="key prefix [default: verify/RUN-ID, a fresh random id]", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="longest wait (s) for a recovery, a restart, replicas to converge, or "
            "(--sequential) a request"
        ),
    ] = 30.0,
) -> None:
    """Prove the cluster linearizable, durable and in agreement (concurrent clients, faults).

    `--sequential`: the assignment's workload, each line with index, term, leader.
    """
    g = Globals.of(ctx)
    if with_chaos and g.endpoints:
        raise UsageError(
            "verify --chaos needs a target to inject faults (--target local|kind), not --endpoints"
        )
    if restart and g.endpoints:
        raise UsageError(
            "verify --restart needs a target to restart (--target local|kind), not --endpoints"
        )
    run_prefix = prefix or f"verify/{uuid.uuid4().hex[:8]}"
    if sequential:
        with g.backend() as backend:
            _verify(g, backend, with_chaos, writes, run_prefix, timeout)
        return
    chosen = tuple(f.strip() for f in fault_list.split(",") if f.strip())
    bad = sorted(set(chosen) - set(FAULTS))
    if bad or not chosen:
        raise UsageError(
            f"--faults takes a comma-separated list of {', '.join(FAULTS)}, got {fault_list!r}"
        )
    if report is not None:
        check_report_path(report)
    settings = Settings(
        clients=clients,
        keys=keys,
        duration=duration,
        chaos=with_chaos,
        faults=chosen,
        fault_interval=fault_interval,
        hold=hold,
        restart=with_chaos if restart is None else restart,
        op_timeout=op_timeout,
        timeout=timeout,
        prefix=run_prefix,
        seed=seed,
    )
    with g.backend() as backend, render.Steps("verify") as steps:
        result = run_verify(backend, settings, token=g.token, on_event=steps.step)
    if report is not None:
        write_report(result, report)
    render.verify_run(result, output=g.output, report=report)
    if not result.passed:
        raise typer.Exit(1)


def _verify(
    g: Globals, backend: Backend, with_chaos: bool, writes: int, prefix: str, timeout: float
) -> None:
    counter = [0]

    def emit(check: Check) -> None:
        counter[0] += 1
        if not g.json:
            render.verify_check(counter[0], check)

    def event(text: str) -> None:
        if not g.json:
            render.verify_event(text)

    reports: list[faults.FaultReport] = []
    with g.kv_client(backend, deadline=timeout) as client:
        work = Workload(client, prefix, emit)
        try:
            _run(g, backend, work, with_chaos, writes, prefix, timeout, reports, emit, event)
        except WorkloadAborted as err:
            event(f"aborted: {err}")
    failed = len(work.failed)
    render.verify_verdict(
        failed == 0, len(work.checks), failed, output=g.output, checks=work.checks, faults=reports
    )
    if failed:
        raise typer.Exit(1)


def _run(
    g: Globals,
    backend: Backend,
    work: Workload,
    with_chaos: bool,
    writes: int,
    prefix: str,
    timeout: float,
    reports: list[faults.FaultReport],
    emit: Callable[[Check], None],
    event: Callable[[str], None],
) -> None:
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
            event(
                f"{report.action}: new leader {report.new_leader} after "
                f"{_s(report.election_s)}, next write after {_s(report.write_s)}"
            )
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
    app.command(cls=GlobalsCommand, rich_help_panel="Testing")(verify)
