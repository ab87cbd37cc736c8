"""chaos.py — `raftctl chaos kill-leader | delete-pod | stop-node [REPLICA] | restore`.

Faults go through the backend (local: SIGKILL / SIGSTOP / SIGCONT; kind: SIGKILL to the pod's
container process through the node's container runtime / kubectl delete pod / docker pause /
docker unpause the kind node); timings are measured by ``raftctl.faults`` from the signal.
"""

from typing import Annotated

import typer

from raftctl import faults, render
from raftctl.backends.base import Replica
from raftctl.errors import UsageError
from raftctl.options import Globals, GlobalsCommand, Target

__all__ = ["app"]

app = typer.Typer(
    name="chaos",
    help="Inject faults and measure how the cluster heals.",
    no_args_is_help=True,
)

Timeout = Annotated[float, typer.Option(help="give up waiting after this many seconds")]
Victim = Annotated[
    str | None, typer.Argument(help="replica to hit (default: the leader)", show_default=False)
]
RESTORE_TIMEOUT = {Target.local: 60.0, Target.kind: 300.0}  # a kind node needs longer


@app.command("kill-leader", cls=GlobalsCommand)
def kill_leader(ctx: typer.Context, timeout: Timeout = 60.0) -> None:
    """Crash the leader (SIGKILL to its process; kind: inside its pod, which the kubelet
    restarts in place) and time the recovery."""
    g = Globals.of(ctx)
    with g.backend(use_endpoints=False) as backend:
        with render.Steps("chaos kill-leader") as steps:
            report = faults.run_fault(
                backend, fault="kill", token=g.token, timeout=timeout, on_progress=steps.step
            )
        render.chaos_report(report, output=g.output)


@app.command("delete-pod", cls=GlobalsCommand)
def delete_pod(
    ctx: typer.Context,
    replica: Victim = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="force-delete with grace period 0 (the kubelet still sends SIGTERM)"
        ),
    ] = False,
    timeout: Timeout = 120.0,
) -> None:
    """kind only: delete a replica's pod (default: the leader's); the StatefulSet re-creates it.

    A graceful deletion: the node gets SIGTERM and hands leadership over (not a crash; for a
    crash use `chaos kill-leader`).
    """
    g = Globals.of(ctx)
    if g.target is not Target.kind or g.endpoints:
        raise UsageError("delete-pod needs --target kind (locally use `raftctl chaos kill-leader`)")
    with g.kind() as backend:

        def inject(victim: Replica) -> str:
            return backend.delete_pod(victim, force=force)

        with render.Steps("chaos delete-pod") as steps:
            report = faults.run_fault(
                backend,
                fault="delete-pod",
                replica_id=replica,
                token=g.token,
                timeout=timeout,
                on_progress=steps.step,
                inject=inject,
            )
        render.chaos_report(report, output=g.output)


@app.command("stop-node", cls=GlobalsCommand)
def stop_node(ctx: typer.Context, replica: Victim = None, timeout: Timeout = 60.0) -> None:
    """Freeze the machine under a replica (local: SIGSTOP; kind: docker pause its node).

    It stays frozen until `raftctl chaos restore`.
    """
    g = Globals.of(ctx)
    with g.backend(use_endpoints=False) as backend:
        with render.Steps("chaos stop-node") as steps:
            report = faults.run_fault(
                backend,
                fault="stop",
                replica_id=replica,
                token=g.token,
                timeout=timeout,
                on_progress=steps.step,
            )
        render.chaos_report(report, output=g.output)


@app.command("restore", cls=GlobalsCommand)
def restore(
    ctx: typer.Context,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="give up waiting after this many seconds [default: local 60, kind 300]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Bring back everything chaos stopped and wait until it has caught up.

    Exit code 1 when something is still pending at the deadline (it is named).
    """
    g = Globals.of(ctx)
    with g.backend(use_endpoints=False) as backend:
        with render.Steps("chaos restore") as steps:
            steps.step("resuming stopped replicas")
            report = faults.restore(
                backend, token=g.token, timeout=timeout or RESTORE_TIMEOUT[g.target]
            )
        render.restore_report(report, output=g.output)
        if report.pending:
            raise typer.Exit(1)
