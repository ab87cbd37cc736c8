"""watch.py — `raftctl watch PREFIX [--from-index N]`: print changes as they happen.

Follows ``GET /v1/watch`` on any replica and resumes on another one from the last index it
printed when a node dies or shuts down (raftctl/watchstream.py), so no change is missed or repeated.
"""

from typing import Annotated

import typer

from raftctl import render
from raftctl.options import Globals, GlobalsCommand
from raftctl.watchstream import WatchStream

__all__ = ["register"]


def watch(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="watch keys starting with this ('' = all)")] = "",
    from_index: Annotated[
        int | None,
        typer.Option(
            "--from-index",
            min=0,
            help="start after this Raft index (default: from now); see docs/watch.md",
        ),
    ] = None,
    max_changes: Annotated[
        int | None, typer.Option("--max-changes", min=1, help="exit 0 after printing N changes")
    ] = None,
) -> None:
    """Print every change under PREFIX as it is applied, in index order, one per line
    (`--output json`: one JSON object per line). Ctrl-C stops.

    **Examples**: `raftctl watch config/` · `raftctl watch "" --from-index 120 -o json`
    """
    g = Globals.of(ctx)
    with g.backend() as backend:
        urls = [r.url for r in backend.replicas()]
        printed = 0
        with WatchStream(
            urls,
            prefix=prefix,
            from_index=from_index,
            token=g.token,
            on_reconnect=lambda url, index, why: render.note(
                f"watch interrupted ({why}); resuming on {url} after index {index}"
            ),
        ) as stream:
            for change in stream:
                if g.json:
                    render.emit_json(change, compact=True)
                else:
                    value = "" if change.get("value") is None else f" {change['value']}"
                    render.line(f"{change['index']} {change['op']} {change['key']}{value}")
                printed += 1
                if max_changes is not None and printed >= max_changes:
                    return


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Key/value")(watch)
