"""chaos.py — `raftctl chaos kill-leader | stop-node [REPLICA] | restore`.

Faults go through the backend (local: SIGKILL / SIGSTOP / SIGCONT; kind: force-delete the pod /
docker stop / docker start the kind node); timings are measured by ``raftctl.chaos``.
"""

from typing import Annotated

import typer

from raftctl import chaos as faults, render
from raftctl.options import Globals, command

__all__ = ["app"]

app = typer.Typer(
    name="chaos",
    help="Inject faults and measure how the cluster heals.",
    no_args_is_help=True,
)

Timeout = Annotated[float, typer.Option(help="give up waiting after this many seconds")]


@app.command("kill-leader")
@command
def kill_leader(g: Globals, timeout: Timeout = 60.0) -> None:
    """Kill the leader hard (local: SIGKILL; kind: force-delete its pod) and time the recovery."""
    backend = g.backend(use_endpoints=False)
    try:
        with render.Steps("chaos kill-leader") as steps:
            report = faults.run_fault(backend, fault="kill", token=g.token, timeout=timeout,
                                      on_progress=steps.step)
        render.chaos_report(report, output=g.output)
    finally:
        backend.close()


@app.command("stop-node")
@command
def stop_node(
    g: Globals,
    replica: Annotated[str | None, typer.Argument(
        help="replica to take down (default: the leader)", show_default=False)] = None,
    timeout: Timeout = 60.0,
) -> None:
    """Freeze the machine under a replica (local: SIGSTOP; kind: docker stop its node).

    It stays down until `raftctl chaos restore`.
    """
    backend = g.backend(use_endpoints=False)
    try:
        with render.Steps("chaos stop-node") as steps:
            report = faults.run_fault(backend, fault="stop", replica_id=replica, token=g.token,
                                      timeout=timeout, on_progress=steps.step)
        render.chaos_report(report, output=g.output)
    finally:
        backend.close()


@app.command("restore")
@command
def restore(g: Globals, timeout: Timeout = 60.0) -> None:
    """Bring back everything chaos stopped and wait until it has caught up."""
    backend = g.backend(use_endpoints=False)
    try:
        with render.Steps("chaos restore") as steps:
            steps.step("resuming stopped replicas")
            report = faults.restore(backend, token=g.token, timeout=timeout)
        render.restore_report(report, output=g.output)
    finally:
        backend.close()
