"""bench.py — `raftctl bench`: throughput and latency percentiles, live progress, --output json.

On the kind target the load goes through `kubectl port-forward` (and a note says so), or, with
``--in-cluster``, runs as ``raftctl bench --endpoints <pod DNS names>`` in a Pod of the node image
(the measurement raftkv's clients inside the cluster would see).
"""

import json
import secrets
from typing import Annotated, Any

import typer

from raftctl import render
from raftctl.clusterview import fetch_view
from raftctl.errors import RaftctlError, Unavailable, UsageError
from raftctl.loadgen import BenchResult, run_bench
from raftctl.options import Globals, GlobalsCommand, Target

__all__ = ["register"]

KIND_NOTE = (
    "note: --target kind measures from this machine through `kubectl port-forward` "
    "(client → kubectl → API server → kubelet → pod, one forward per pod): the figures "
    "include that path and are far below what clients inside the cluster see; "
    "`--in-cluster` runs the bench in a Pod instead (docs/kubernetes.md, "
    '"Benchmarks on kind")'
)


def bench(
    ctx: typer.Context,
    clients: Annotated[
        int,
        typer.Option("--clients", "-c", min=1, max=512, help="concurrent clients (connections)"),
    ] = 16,
    duration: Annotated[
        float, typer.Option("--duration", "-d", min=0.5, help="seconds to run")
    ] = 10.0,
    read_ratio: Annotated[
        float,
        typer.Option(
            "--read-ratio", min=0.0, max=1.0, help="fraction of operations that are reads"
        ),
    ] = 0.5,
    value_size: Annotated[int, typer.Option(min=1, max=1 << 20, help="bytes per value")] = 64,
    in_cluster: Annotated[
        bool,
        typer.Option(
            "--in-cluster",
            help="kind: run the bench in a Pod of the node image, against the pods' "
            "DNS names, instead of from here through port-forward",
        ),
    ] = False,
) -> None:
    """Drive the cluster with concurrent clients and report throughput and latency."""
    g = Globals.of(ctx)
    if in_cluster:
        _bench_in_cluster(
            g, clients=clients, duration=duration, read_ratio=read_ratio, value_size=value_size
        )
        return
    with g.backend() as backend:
        replicas = backend.replicas()
        view = fetch_view(replicas, token=g.token)
        leader = view.leader_row
        if leader is None:
            raise Unavailable("the cluster has no leader; see `raftctl status`")
        urls = [leader.replica.url] + [r.url for r in replicas if r.id != leader.id]
        with render.bench_live() as on_tick:
            result = run_bench(
                urls,
                clients=clients,
                duration=duration,
                read_ratio=read_ratio,
                value_size=value_size,
                token=g.token,
                on_tick=on_tick,
            )
        render.bench_result(result, output=g.output)
        if backend.target == "kind":
            render.note(KIND_NOTE)


def _bench_in_cluster(
    g: Globals, *, clients: int, duration: float, read_ratio: float, value_size: int
) -> None:
    if g.target is not Target.kind or g.endpoints:
        raise UsageError("--in-cluster needs --target kind")
    with g.kind() as backend, render.Steps("raftctl bench --in-cluster") as steps:
        image, urls = backend.in_cluster_endpoints()
        command = [
            "raftctl",
            "bench",
            "--endpoints",
            ",".join(urls),
            "--clients",
            str(clients),
            "--duration",
            f"{duration:g}",
            "--read-ratio",
            f"{read_ratio:g}",
            "--value-size",
            str(value_size),
            "--output",
            "json",
        ]
        name = f"{g.name}-bench-{secrets.token_hex(3)}"
        log = backend.run_pod(name, image, command, timeout=duration + 180, reporter=steps)
    result = parse_bench_log(log)
    render.bench_result(result, output=g.output)
    render.note(
        f"note: measured inside the cluster by pod {name} ({image}) against {', '.join(urls)}"
    )


def parse_bench_log(log: str) -> BenchResult:
    """The ``BenchResult`` of a pod's ``raftctl bench -o json`` log (progress lines before it)."""
    lines = log.splitlines()
    start = max((i for i, ln in enumerate(lines) if ln == "{"), default=None)
    try:
        if start is None:
            raise ValueError("no JSON document")
        doc: dict[str, Any] = json.loads("\n".join(lines[start:]))
        fields = BenchResult.__dataclass_fields__
        return BenchResult(**{k: doc[k] for k in fields})
    except (ValueError, KeyError, TypeError) as err:
        tail = " ".join(log.strip().splitlines()[-1:]) or "no output"
        raise RaftctlError(f"the bench pod printed no result ({err}): {tail}") from err


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Testing")(bench)
