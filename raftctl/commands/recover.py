"""recover.py — `raftctl recover --from REPLICA [--replicas N]`: recovery from quorum loss.

Without ``--replicas`` the cluster restarts with REPLICA as its only voter (``raftkv recover``:
every entry in its log kept; entries never acknowledged may surface, as with etcd
``--force-new-cluster``). With ``--replicas N`` it then grows back to N members, every one seeded
from REPLICA's whole log with the same cluster id. Runbook: docs/operations.md.
"""

from typing import Annotated

import typer

from raftctl import backup_ops, kind_ops, render
from raftctl.backends.kind import KindBackend
from raftctl.clusterview import fetch_view, wait_for_leader
from raftctl.errors import UsageError
from raftctl.options import Globals, GlobalsCommand

__all__ = ["register"]


def recover(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="the surviving replica (e.g. raft-0)")],
    replicas: Annotated[
        int,
        typer.Option(
            "--replicas",
            "-r",
            min=1,
            max=99,
            help="1: run the survivor alone; N: grow back to N members seeded from it",
        ),
    ] = 1,
    tag: Annotated[str, typer.Option(help="kind: image tag of the one-off pods")] = "dev",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a leader")] = 120.0,
) -> None:
    """Recover a cluster that lost its majority for good, from one surviving replica.

    **Examples**: `raftctl recover --from raft-0` then `raftctl recover --from raft-0 --replicas 3`
    """
    g = Globals.of(ctx)
    if g.endpoints:
        raise UsageError("recover needs a target (--target local|kind), not --endpoints")
    if replicas % 2 == 0:
        raise UsageError(
            f"--replicas must be odd (a majority of {replicas} tolerates no more "
            f"failures than {replicas - 1})"
        )
    if not yes and not typer.confirm(
        f"Stop cluster {g.name!r} and rebuild it from {from_} alone? Other replicas' data is "
        "moved aside, not deleted.",
        err=True,
    ):
        raise typer.Exit(1)
    with g.target_backend(tag=tag) as backend:
        with render.Steps(f"raftctl recover ({g.target.value})") as steps:
            if isinstance(backend, KindBackend):
                done = kind_ops.recover_kind(backend, from_, replicas, steps)
            else:
                done = backup_ops.recover_local(backend, from_, replicas, steps)
            steps.step("waiting for a leader")
            view = wait_for_leader(
                lambda: fetch_view(backend.replicas(), token=g.token), timeout=timeout
            )
        done["leader"] = view.leader
        done["term"] = view.term
        render.fields(f"recovered cluster {g.name} from {from_}", done, output=g.output)
        if replicas == 1 and not g.json:
            render.note(f"next: `raftctl recover --from {from_} --replicas 3` grows it back")


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Operations")(recover)
