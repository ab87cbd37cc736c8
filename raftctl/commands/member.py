"""member.py — `raftctl member list|add|promote|remove` and `raftctl scale N` (docs/membership.md).

`member` commands are thin wrappers over the nodes' membership API (any replica; the nodes
forward to the leader). `scale` changes the number of voters one server at a time through the log:
up = start a replica with a new id (joining), add it as a learner, wait until it caught up,
promote it; down = remove voters (highest ordinals, the leader last after a transfer), then
stop them and delete their data unless --keep-data. Local target (the kind target: see
docs/membership.md).
"""

from typing import Annotated

import typer

from raftctl import render
from raftctl.errors import UsageError
from raftctl.membership import (
    Config,
    Members,
    next_replica_id,
    scale_down_one,
    scale_up_one,
)
from raftctl.options import Globals, Target, command

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
        render.line(f"  {m['id']:<10} {m['role']:<8} match={'—' if match is None else match:<8}"
                    f" {reach:<11} {m.get('url', '')}")


def _members(g: Globals) -> tuple[Members, object]:
    backend = g.backend()
    client = g.kv_client(backend)
    client.transport.token = _token(g)
    return Members(client), backend


@app.command("list")
@command
def member_list(g: Globals) -> None:
    """Every member: role (voter/learner), match index, reachable, URL."""
    m, backend = _members(g)
    try:
        _show(m.list(), g, "members")
    finally:
        m.client.close()
        backend.close()  # type: ignore[attr-defined]


@app.command("add")
@command
def member_add(
    g: Globals,
    member_id: Annotated[str, typer.Argument(help="the new member's id (never used before)")],
    url: Annotated[str, typer.Argument(help="its base URL, http://host:port")],
) -> None:
    """Add a learner (it replicates but does not vote until promoted)."""
    m, backend = _members(g)
    try:
        _show(m.add(member_id, url), g, f"{member_id} added as a learner")
    finally:
        m.client.close()
        backend.close()  # type: ignore[attr-defined]


@app.command("promote")
@command
def member_promote(
    g: Globals,
    member_id: Annotated[str, typer.Argument(help="a learner's id")],
    force: Annotated[bool, typer.Option(
        "--force", help="promote even if it has not caught up")] = False,
) -> None:
    """Make a caught-up learner a voter."""
    m, backend = _members(g)
    try:
        _show(m.promote(member_id, force=force), g, f"{member_id} promoted to voter")
    finally:
        m.client.close()
        backend.close()  # type: ignore[attr-defined]


@app.command("remove")
@command
def member_remove(
    g: Globals,
    member_id: Annotated[str, typer.Argument(help="a voter's or learner's id")],
) -> None:
    """Remove a member through the log (its id can never join again)."""
    m, backend = _members(g)
    try:
        _show(m.remove(member_id), g, f"{member_id} removed")
    finally:
        m.client.close()
        backend.close()  # type: ignore[attr-defined]


@command
def scale(
    g: Globals,
    voters: Annotated[int, typer.Argument(help="the number of voters wanted (>= 1)")],
    keep_data: Annotated[bool, typer.Option(
        "--keep-data", help="scale down: keep the removed replicas' data")] = False,
    timeout: Annotated[float, typer.Option(help="seconds allowed for each step")] = 60.0,
) -> None:
    """Grow or shrink the voter set one server at a time, through the log.

    **Examples**: `raftctl scale 5` · `raftctl scale 3 --keep-data`
    """
    if voters < 1:
        raise UsageError("a cluster needs at least 1 voter")
    if g.endpoints or g.target is not Target.local:
        raise UsageError("scale works on --target local; on Kubernetes see docs/membership.md "
                         "(raftctl member add/promote/remove with kubectl scale)")
    from raftctl.backends.localscale import LocalPool

    if voters % 2 == 0:
        render.note(f"note: {voters} voters tolerate no more failures than {voters - 1}, and "
                    "need a larger majority")
    backend = g.local()
    pool = LocalPool(backend)
    client = g.kv_client(backend)
    token = _token(g)
    client.transport.token = token
    m = Members(client)
    try:
        with render.Steps(f"raftctl scale {voters}") as steps:
            conf = m.list()
            steps.step(f"voters now: {', '.join(conf.voters)}")
            while len(conf.voters) < voters:
                new_id = next_replica_id(conf, pool.ids())
                conf = scale_up_one(m, pool, new_id, token, timeout, steps.step)
                client.urls = [r.url for r in backend.replicas()]
                steps.step(f"voters now: {', '.join(conf.voters)}")
            if len(conf.voters) > voters:
                # like a StatefulSet: the highest ordinals go; the leader last (after a transfer)
                def ordinal(nid: str) -> int:
                    digits = nid.rsplit("-", 1)[-1]
                    return int(digits) if digits.isdigit() else -1

                excess = len(conf.voters) - voters
                victims = sorted(conf.voters, key=ordinal, reverse=True)[:excess]
                leader = m.leader()
                victims.sort(key=lambda v: v == leader)
                for victim in victims:
                    conf = scale_down_one(m, pool, victim, conf, timeout, keep_data, steps.step)
                    client.urls = [r.url for r in backend.replicas()]
                    steps.step(f"voters now: {', '.join(conf.voters)}")
        _show(conf, g, f"{len(conf.voters)} voters")
    finally:
        client.close()


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="member", rich_help_panel="Cluster")
    root.command(rich_help_panel="Cluster")(scale)
