"""image.py — `raftctl build`, `push`, `install`: the kind target's image and chart steps.

`up --target kind` runs them in order; these commands run one step alone.
"""

from enum import StrEnum
from typing import Annotated

import typer

from raftctl import render
from raftctl.options import Globals, GlobalsCommand

__all__ = ["AntiAffinityOpt", "register"]

Tag = Annotated[str, typer.Option(help="image tag")]
Base = Annotated[
    str | None,
    typer.Option(
        help="base image (images/build.sh --base) [default: python:3.11.14-slim-bookworm; offline: "
        "local/python:3.11-bookworm, built with debootstrap as root]",
        show_default=False,
    ),
]


class AntiAffinity(StrEnum):
    """The chart's ``antiAffinity`` value."""

    hard = "hard"
    soft = "soft"


AntiAffinityOpt = Annotated[
    AntiAffinity,
    typer.Option(
        "--anti-affinity",
        help="kind: `hard` = one replica per Kubernetes node (checked against the "
        "cluster's schedulable workers before installing); `soft` = preferred only",
    ),
]


def build(ctx: typer.Context, tag: Tag = "dev", base: Base = None) -> None:
    """Build the raftkv image as localhost:5001/raftkv:TAG (images/build.sh)."""
    g = Globals.of(ctx)
    with g.kind(tag, base=base) as backend, render.Steps("raftctl build") as steps:
        ref = backend.build(steps)
    render.line(f"built {ref}")


def push(ctx: typer.Context, tag: Tag = "dev") -> None:
    """Push localhost:5001/raftkv:TAG to the kind cluster's registry."""
    g = Globals.of(ctx)
    with g.kind(tag) as backend, render.Steps("raftctl push") as steps:
        digest = backend.push(steps)
    render.line(f"pushed {backend.s.ref}" + (f" ({digest})" if digest else ""))


def install(
    ctx: typer.Context,
    tag: Tag = "dev",
    replicas: Annotated[
        int | None, typer.Option("--replicas", "-r", min=1, show_default=False)
    ] = None,
    anti_affinity: AntiAffinityOpt = AntiAffinity.hard,
) -> None:
    """helm upgrade --install the chart with this image (by its pushed digest; waits for
    the pods)."""
    g = Globals.of(ctx)
    with (
        g.kind(tag, anti_affinity=anti_affinity.value) as backend,
        render.Steps("raftctl install") as steps,
    ):
        digest = backend.install(replicas, steps)
    shown = f"{backend.s.image}@{digest}" if digest else f"{backend.s.ref} (by tag)"
    render.line(f"release {g.name} installed in namespace {g.namespace}: {shown}")


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Kubernetes (kind)")(build)
    app.command(cls=GlobalsCommand, rich_help_panel="Kubernetes (kind)")(push)
    app.command(cls=GlobalsCommand, rich_help_panel="Kubernetes (kind)")(install)
