"""cluster.py — `raftctl up`, `down`, `status`, `logs`: a cluster's lifecycle and health.

Thin: each command resolves its backend from the global options, lets the backend work, and
hands the result to ``render``.
"""

import contextlib
import time
from typing import Annotated

import typer

from raftctl import render
from raftctl.backends.base import Backend
from raftctl.clusterview import ClusterView, fetch_view, wait_for_leader
from raftctl.commands.image import AntiAffinity, AntiAffinityOpt
from raftctl.errors import Unavailable, UsageError
from raftctl.options import Globals, GlobalsCommand, Target

__all__ = ["register"]


def _title(g: Globals) -> str:
    if g.endpoints:
        return f"raftkv cluster at {len(g.endpoints)} endpoint(s)"
    return f"raftkv cluster {g.name!r} ({g.target.value})"


def _view(g: Globals, backend: Backend) -> ClusterView:
    return fetch_view(backend.replicas(), token=g.token)


def _flags(g: Globals) -> str:
    parts = []
    if g.target is Target.kind:
        parts.append("--target kind")
    if g.name != "raftkv":
        parts.append(f"--name {g.name}")
    return (" " + " ".join(parts)) if parts else ""


def up(
    ctx: typer.Context,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            "-r",
            min=1,
            max=99,
            help="replica count (odd; default 3)",
            show_default=False,
        ),
    ] = None,
    base_port: Annotated[
        int | None,
        typer.Option(
            "--base-port",
            min=1,
            max=65000,
            help="local: ports base..base+N-1 (default: free ports)",
        ),
    ] = None,
    election_ms: Annotated[int, typer.Option(help="local: election timeout (ms)")] = 500,
    heartbeat_ms: Annotated[int, typer.Option(help="local: heartbeat interval (ms)")] = 100,
    tag: Annotated[str, typer.Option(help="kind: image tag to build, push and deploy")] = "dev",
    base: Annotated[
        str | None,
        typer.Option(
            help="kind: base image of the build (see raftctl build --base)", show_default=False
        ),
    ] = None,
    anti_affinity: AntiAffinityOpt = AntiAffinity.hard,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="local: HTTPS + mutual TLS between peers with a throwaway CA (new clusters only)",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a leader")] = 60.0,
) -> None:
    """Start the cluster and wait until it has a leader (idempotent).

    **Examples**: `raftctl up` · `raftctl up --replicas 5` · `raftctl up --target kind`
    """
    g = Globals.of(ctx)
    if g.endpoints:
        raise UsageError("up needs a target (--target local|kind), not --endpoints")
    if tls and g.target is not Target.local:
        raise UsageError(
            "--tls is for the local target; on kind set the chart's tls.* values (docs/security.md)"
        )
    if replicas is not None and replicas % 2 == 0:
        render.note(f"note: {replicas} replicas tolerate no more failures than {replicas - 1}")
    with g.backend(
        use_endpoints=False,
        base_port=base_port,
        election_ms=election_ms,
        heartbeat_ms=heartbeat_ms,
        tag=tag,
        base=base,
        anti_affinity=anti_affinity.value,
        **({"tls": True} if tls else {}),
    ) as backend:
        with render.Steps(f"raftctl up ({g.target.value})") as steps:
            started = backend.up(replicas, steps)
            steps.step("waiting for a leader")
            start = time.monotonic()

            def show(v: ClusterView) -> None:
                answering = sum(r.reachable for r in v.rows)
                steps.update(
                    f"waiting for a leader ({answering}/{len(v.rows)} replicas answering,"
                    f" {time.monotonic() - start:.0f}s)"
                )

            try:
                view = wait_for_leader(lambda: _view(g, backend), timeout=timeout, on_view=show)
            except Unavailable as err:
                hint = (
                    "`raftctl logs raft-0`"
                    if g.target is Target.local
                    else "`kubectl get pods` and `raftctl logs raft-0 --target kind`"
                )
                raise Unavailable(f"{err.message}; see {hint}") from err
            steps.step(f"leader {view.leader} elected in term {view.term}")
        render.status(
            view,
            output=g.output,
            title=_title(g),
            kubernetes=g.target is Target.kind,
            extra={"name": g.name, "target": g.target.value, "started": started},
        )
        if not g.json:
            leader = view.leader_row
            url = leader.replica.url if leader and g.target is Target.local else None
            render.curl_examples(url, flags=_flags(g))


def down(
    ctx: typer.Context,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="also delete the data (local: the state dir; kind: the PVCs)"),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="kind: seconds to wait for the pods to be gone")
    ] = 120.0,
) -> None:
    """Stop the cluster; keeps its data for the next `up` unless --purge.

    kind: returns once the release's pods are gone (exit 1 naming those left at --timeout).
    """
    g = Globals.of(ctx)
    if g.endpoints:
        raise UsageError("down needs a target (--target local|kind), not --endpoints")
    with (
        g.backend(use_endpoints=False, wait_s=timeout) as backend,
        render.Steps(f"raftctl down ({g.target.value})") as steps,
    ):
        done = backend.down(purge, steps)
    if g.json:
        render.emit_json({"name": g.name, "target": g.target.value, "purged": purge, "done": done})
    else:
        for item in done:
            render.line(item)


def status(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="--watch refresh interval (s)")] = 1.0,
) -> None:
    """One row per replica: role, term, commit, applied, lag, health; the leader highlighted.

    Exit code 0 when a leader and a healthy quorum are seen, 1 otherwise.
    """
    g = Globals.of(ctx)
    kube = g.target is Target.kind and not g.endpoints
    with g.backend() as backend, contextlib.suppress(KeyboardInterrupt):
        if not watch:
            view = _view(g, backend)
            render.status(view, output=g.output, title=_title(g), kubernetes=kube)
            if not view.healthy:
                raise typer.Exit(1)
            return
        render.status_watch(
            lambda: _view(g, backend),
            interval=interval,
            output=g.output,
            title=_title(g),
            kubernetes=kube,
        )


def logs(
    ctx: typer.Context,
    replica: Annotated[str, typer.Argument(help="replica id (e.g. raft-0), or `supervisor`")],
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="only the last N lines")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines")] = False,
) -> None:
    """Show a replica's log."""
    g = Globals.of(ctx)
    with g.backend(use_endpoints=False) as backend, contextlib.suppress(KeyboardInterrupt):
        for text in backend.logs(replica, tail=tail, follow=follow):
            render.raw(text)


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Cluster")(up)
    app.command(cls=GlobalsCommand, rich_help_panel="Cluster")(down)
    app.command(cls=GlobalsCommand, rich_help_panel="Cluster")(status)
    app.command(cls=GlobalsCommand, rich_help_panel="Cluster")(logs)
