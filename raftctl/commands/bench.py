"""bench.py — `raftctl bench`: throughput and latency percentiles, live progress, --output json."""

from typing import Annotated

import typer

from raftctl import render
from raftctl.bench import run_bench
from raftctl.cluster import fetch_view
from raftctl.errors import Unavailable
from raftctl.options import Globals, command

__all__ = ["register"]

KIND_NOTE = ("note: --target kind measures from this machine through `kubectl port-forward` "
             "(client → kubectl → API server → kubelet → pod, one forward per pod): the figures "
             "include that path and are far below what clients inside the cluster see "
             "(docs/kubernetes.md, \"Benchmarks on kind\")")


@command
def bench(
    g: Globals,
    clients: Annotated[int, typer.Option("--clients", "-c", min=1, max=512,
                                         help="concurrent clients (connections)")] = 16,
    duration: Annotated[float, typer.Option("--duration", "-d", min=0.5,
                                            help="seconds to run")] = 10.0,
    read_ratio: Annotated[float, typer.Option("--read-ratio", min=0.0, max=1.0,
                                              help="fraction of operations that are reads")] = 0.5,
    value_size: Annotated[int, typer.Option(min=1, max=1 << 20, help="bytes per value")] = 64,
) -> None:
    """Drive the cluster with concurrent clients and report throughput and latency."""
    backend = g.backend()
    try:
        replicas = backend.replicas()
        view = fetch_view(replicas, token=g.token)
        leader = view.leader_row
        if leader is None:
            raise Unavailable("the cluster has no leader; see `raftctl status`")
        urls = [leader.replica.url] + [r.url for r in replicas if r.id != leader.id]
        with render.bench_live() as on_tick:
            result = run_bench(urls, clients=clients, duration=duration, read_ratio=read_ratio,
                               value_size=value_size, token=g.token, on_tick=on_tick)
        render.bench_result(result, output=g.output)
        if backend.target == "kind":
            render.note(KIND_NOTE)
    finally:
        backend.close()


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Testing")(bench)
