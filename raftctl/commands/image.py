"""image.py — `raftctl build`, `push`, `install`: the kind target's image and chart steps.

`up --target kind` runs them in order; these commands run one step alone.
"""

from typing import Annotated

import typer

from raftctl import render
from raftctl.options import Globals, command

__all__ = ["register"]

Tag = Annotated[str, typer.Option(help="image tag")]


Base = Annotated[str | None, typer.Option(
    help="base image (images/build.sh --base) [default: python:3.11.14-slim-bookworm; offline: "
    "local/python:3.11-bookworm, built with debootstrap as root]", show_default=False)]


@command
def build(g: Globals, tag: Tag = "dev", base: Base = None) -> None:
    """Build the raftkv image as localhost:5001/raftkv:TAG (images/build.sh)."""
    backend = g.kind(tag, base)
    with render.Steps("raftctl build") as steps:
        ref = backend.build(steps)
    render.line(f"built {ref}")


@command
def push(g: Globals, tag: Tag = "dev") -> None:
    """Push localhost:5001/raftkv:TAG to the kind cluster's registry."""
    backend = g.kind(tag)
    with render.Steps("raftctl push") as steps:
        ref = backend.push(steps)
    render.line(f"pushed {ref}")


@command
def install(
    g: Globals,
    tag: Tag = "dev",
    replicas: Annotated[int | None, typer.Option("--replicas", "-r", min=1,
                                                 show_default=False)] = None,
) -> None:
    """helm upgrade --install the chart with this image (waits for the pods)."""
    backend = g.kind(tag)
    with render.Steps("raftctl install") as steps:
        backend.install(replicas, steps)
    render.line(f"release {g.name} installed in namespace {g.namespace}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Kubernetes (kind)")(build)
    app.command(rich_help_panel="Kubernetes (kind)")(push)
    app.command(rich_help_panel="Kubernetes (kind)")(install)
