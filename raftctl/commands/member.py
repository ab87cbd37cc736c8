"""member.py — `raftctl member list|add|promote|remove` and `raftctl scale N` (docs/membership.md).

`member` commands are thin wrappers over the nodes' membership API (any replica; the nodes
forward to the leader). `scale` changes the number of voters one server at a time through the log:
up = start a replica with a new id (joining), add it as a learner, wait until it caught up,
promote it; down = remove voters (highest ordinals, the leader last after a transfer), then
stop them and delete their data unless --keep-data (kind: scale the StatefulSet, delete the freed
PVCs unless --keep-pvcs).
"""

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer

from raftctl import render
from raftctl.backends.kind import KindBackend
from raftctl.errors import UsageError
from raftctl.membership import (
    Config,
    Members,
    ReplicaPool,
    scale_down,
    scale_up_one,
)
from raftctl.options import Globals, GlobalsCommand, Target

__all__ = ["app", "register"]

app = typer.Typer(
    name="member",
    help="List and change the cluster's members (learners, voters) through the log.",
    no_args_is_help=True,
)


def _token(g: Globals) -> str | None:
    if g.token or g.endpoints or g.target is not Target.local:
        return g.token
    spec = g.local().spec()
    return spec.token if spec is not None else None


def _show(conf: Config, g: Globals, title: str) -> None:
    if g.json:
        render.emit_json(conf.to_json())
        return
    render.line(f"{title} (configuration index {conf.config_index})")
    for m in conf.members:
        reach = {True: "reachable", False: "UNREACHABLE", None: "?"}[m.get("reachable")]
        match = m.get("match_index")
        render.line(
            f"  {m['id']:<10} {m['role']:<8} match={'—' if match is None else match:<8}"
            f" {reach:<11} {m.get('url', '')}"
        )


@contextlib.contextmanager
def _members(g: Globals) -> Iterator[Members]:
    """The membership API of the cluster ``g`` names; its client and backend closed on exit."""
    with g.backend() as backend, g.kv_client(backend) as client:
        client.transport.token = _token(g)
        yield Members(client)


@app.command("list", cls=GlobalsCommand)
def member_list(ctx: typer.Context) -> None:
    """Every member: role (voter/learner), match index, reachable, URL."""
    g = Globals.of(ctx)
    with _members(g) as m:
        _show(m.list(), g, "members")


@app.command("add", cls=GlobalsCommand)
def member_add(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(help="the new member's id (never used before)")],
    url: Annotated[str, typer.Argument(help="its base URL, http://host:port")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="allow an id removed before (only if its old data is gone for good, "
            "e.g. a StatefulSet ordinal whose PVC was deleted)",
        ),
    ] = False,
) -> None:
    """Add a learner (it replicates but does not vote until promoted)."""
    g = Globals.of(ctx)
    with _members(g) as m:
        _show(m.add(member_id, url, reuse_removed_id=force), g, f"{member_id} added as a learner")


@app.command("promote", cls=GlobalsCommand)
def member_promote(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(help="a learner's id")],
    force: Annotated[
        bool, typer.Option("--force", help="promote even if it has not caught up")
    ] = False,
) -> None:
    """Make a caught-up learner a voter."""
    g = Globals.of(ctx)
    with _members(g) as m:
        _show(m.promote(member_id, force=force), g, f"{member_id} promoted to voter")


@app.command("remove", cls=GlobalsCommand)
def member_remove(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(help="a voter's or learner's id")],
) -> None:
    """Remove a member through the log (its id can never join again)."""
    g = Globals.of(ctx)
    with _members(g) as m:
        _show(m.remove(member_id), g, f"{member_id} removed")


def scale(
    ctx: typer.Context,
    voters: Annotated[int, typer.Argument(help="the number of voters wanted (>= 1)")],
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="local: keep the removed replicas' data")
    ] = False,
    keep_pvcs: Annotated[
        bool,
        typer.Option("--keep-pvcs", help="kind: keep the removed replicas' PersistentVolumeClaims"),
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds allowed for each step")] = 60.0,
) -> None:
    """Grow or shrink the voter set one server at a time, through the log.

    **Examples**: `raftctl scale 5` · `raftctl scale 3 --keep-data` ·
    `raftctl scale 5 --target kind`
    """
    g = Globals.of(ctx)
    if voters < 1:
        raise UsageError("a cluster needs at least 1 voter")
    if g.endpoints:
        raise UsageError("scale needs a target (--target local|kind), not --endpoints")
    if voters % 2 == 0:
        render.note(
            f"note: {voters} voters tolerate no more failures than {voters - 1}, and "
            "need a larger majority"
        )
    with g.target_backend() as backend, g.kv_client(backend) as client:
        pool: ReplicaPool
        if isinstance(backend, KindBackend):
            from raftctl.backends.kindscale import KindPool

            pool = KindPool(backend)
        else:
            from raftctl.backends.local.scale import LocalPool

            pool = LocalPool(backend)
        token = _token(g)
        client.transport.token = token
        m = Members(client)
        with render.Steps(f"raftctl scale {voters}") as steps:
            conf = m.list()
            steps.step(f"voters now: {', '.join(conf.voters)}")
            while len(conf.voters) < voters:
                conf = scale_up_one(m, pool, conf, token, timeout, steps.step)
                client.urls = [r.url for r in backend.replicas()]
                steps.step(f"voters now: {', '.join(conf.voters)}")
            if len(conf.voters) > voters:
                conf = scale_down(
                    m, pool, conf, voters, timeout, keep_data or keep_pvcs, steps.step
                )
        _show(conf, g, f"{len(conf.voters)} voters")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="member", rich_help_panel="Cluster")
    root.command(cls=GlobalsCommand, rich_help_panel="Cluster")(scale)
