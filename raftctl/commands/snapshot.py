"""snapshot.py — `raftctl snapshot save FILE | status FILE | restore FILE` (docs/operations.md).

save: streams ``GET /v1/admin/snapshot`` from the leader (any replica relays) into FILE, verified.
status: verifies FILE alone and shows index, term, keys, size, checksum (like ``etcdutl snapshot
status``). restore: creates a NEW cluster from FILE, with a new cluster id (local: fresh data
dirs; kind: a release whose PVCs an init container seeds from a Secret).
"""

from pathlib import Path
from typing import Annotated

import typer

from raftctl import backup_ops, kind_ops, render
from raftctl.backends.kind import KindBackend
from raftctl.clusterview import fetch_view, wait_for_leader
from raftctl.options import Globals, GlobalsCommand

__all__ = ["app"]

app = typer.Typer(
    name="snapshot",
    help="Back up a cluster to a file, inspect a backup, restore one into a NEW cluster.",
    no_args_is_help=True,
)

File = Annotated[Path, typer.Argument(help="the backup file", dir_okay=False)]


@app.command("save", cls=GlobalsCommand)
def save(
    ctx: typer.Context,
    file: File,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale", help="take the replica's own applied state, without a linearizable read"
        ),
    ] = False,
) -> None:
    """Save a consistent point-in-time backup of the cluster's data to FILE.

    **Examples**: `raftctl snapshot save backup.snap` ·
    `raftctl snapshot save backup.snap --target kind`
    """
    g = Globals.of(ctx)
    with g.backend() as backend:
        with render.Steps("raftctl snapshot save") as steps:
            url = backup_ops.node_url(backend, g.token)
            steps.step(f"downloading GET /v1/admin/snapshot from {url}")
            info = backup_ops.download_backup(url, file, token=g.token, stale=stale)
        render.fields(f"saved {file}", {"file": str(file), **info.to_json()}, output=g.output)


@app.command("status", cls=GlobalsCommand)
def status(ctx: typer.Context, file: File) -> None:
    """Verify FILE (every checksum) and show what it holds; exit 1 if it is damaged."""
    g = Globals.of(ctx)
    info = backup_ops.check_file(file)
    render.fields(
        f"{file}", {"file": str(file), **info.to_json(), "verified": True}, output=g.output
    )


@app.command("restore", cls=GlobalsCommand)
def restore(
    ctx: typer.Context,
    file: File,
    replicas: Annotated[
        int, typer.Option("--replicas", "-r", min=1, max=99, help="members of the new cluster")
    ] = 3,
    base_port: Annotated[
        int | None,
        typer.Option("--base-port", min=1, max=65000, help="local: ports base..base+N-1"),
    ] = None,
    tag: Annotated[str, typer.Option(help="kind: image tag to deploy")] = "dev",
    timeout: Annotated[float, typer.Option(help="seconds to wait for a leader")] = 120.0,
) -> None:
    """Create a NEW cluster (`--name`, which must not exist) from the backup FILE.

    The new cluster gets a new cluster id, so it never talks to the one the backup came from.
    **Examples**: `raftctl snapshot restore backup.snap --name restored` ·
    `raftctl snapshot restore backup.snap --target kind --namespace restored`
    """
    g = Globals.of(ctx)
    with g.target_backend(base_port=base_port, tag=tag) as backend:
        with render.Steps(f"raftctl snapshot restore ({g.target.value})") as steps:
            if isinstance(backend, KindBackend):
                info, cluster_id = kind_ops.restore_kind(backend, file, replicas, steps)
            else:
                info, cluster_id = backup_ops.restore_local(backend, file, replicas, steps)
            steps.step("waiting for a leader")
            view = wait_for_leader(
                lambda: fetch_view(backend.replicas(), token=g.token), timeout=timeout
            )
        render.fields(f"restored cluster {g.name}", {
            "name": g.name, "target": g.target.value, "cluster_id": cluster_id,
            "replicas": [r.id for r in view.rows], "leader": view.leader,
            "index": info.index, "term": info.term, "keys": info.keys,
            "from": str(file), "checksum": info.checksum,
        }, output=g.output)  # fmt: skip
