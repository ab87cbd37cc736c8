"""context.py — `raftctl context list | use NAME | show [NAME]`: the config file's named contexts.

Contexts live in the optional YAML config file (raftctl.configfile: ``$XDG_CONFIG_HOME/raftctl/
config.yaml``); ``--context`` / ``RAFTCTL_CONTEXT`` select one for a command, ``use`` makes one the
file's ``current-context``, ``show`` prints one context's fields. Tokens are never printed, only
whether one is set.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from raftctl import render
from raftctl.configfile import FIELDS, load_config, use_context
from raftctl.options import Globals, GlobalsCommand

__all__ = ["app"]

app = typer.Typer(
    name="context",
    help="Named contexts from the config file ($XDG_CONFIG_HOME/raftctl/config.yaml).",
    no_args_is_help=True,
)


def _public(values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: values.get(k) for k in FIELDS}
    out["token"] = "(set)" if values.get("token") else None
    if values.get("endpoints"):
        out["endpoints"] = values["endpoints"].split(",")
    return out


@app.command("list", cls=GlobalsCommand)
def list_contexts(ctx: typer.Context) -> None:
    """Every context of the config file; the current one is starred."""
    g = Globals.of(ctx)
    config = load_config()
    rows = [
        {"context": name, "current": name == config.current, **_public(values)}
        for name, values in sorted(config.contexts.items())
    ]
    render.context_list(rows, path=str(config.path), exists=config.exists, output=g.output)


@app.command("use", cls=GlobalsCommand)
def use(
    ctx: typer.Context,
    context_name: Annotated[str, typer.Argument(metavar="NAME", help="context to make current")],
) -> None:
    """Make NAME the config file's current-context."""
    g = Globals.of(ctx)
    config = use_context(context_name)
    if g.json:
        render.emit_json({"current-context": context_name, "config": str(config.path)})
    else:
        render.line(f"switched to context {context_name!r} ({config.path})")


@app.command("show", cls=GlobalsCommand)
def show(
    ctx: typer.Context,
    context_name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="context to show (default: the selected one)", show_default=False
        ),
    ] = None,
) -> None:
    """The fields of one context (default: the one --context / RAFTCTL_CONTEXT /
    current-context selects). Flags and RAFTCTL_* variables still override them per command."""
    g = Globals.of(ctx)
    config = load_config()
    chosen, values = config.context(context_name or g.context)
    render.context_show(
        chosen, _public(values), current=config.current, path=str(config.path), output=g.output
    )
