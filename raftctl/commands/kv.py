"""kv.py — `raftctl put`, `get`, `delete`, `list`: the key/value API from the command line.

Each talks to any replica through ``KVClient`` (leader first, safe retries with a request id).
"""

import sys
from typing import Annotated

import typer

from raftctl import render
from raftctl.client import Reply
from raftctl.options import Globals, GlobalsCommand

__all__ = ["register"]


def _meta(reply: Reply) -> dict[str, object]:
    return {"index": reply.index, "term": reply.term, "leader": reply.leader}


def put(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            help="the key: any UTF-8 text of 1-512 bytes (`--` before one starting with `-`)"
        ),
    ],
    value: Annotated[str, typer.Argument(help="the value; `-` reads it from stdin")],
    prev_value: Annotated[
        str | None,
        typer.Option(
            "--prev-value", help="compare-and-set: only write if the current value is this"
        ),
    ] = None,
) -> None:
    """Write KEY=VALUE (acknowledged once committed by a majority).

    **Examples**: `raftctl put greeting hello` · `raftctl put cfg - < cfg.json` ·
    `raftctl put leader-lock me --prev-value ""`
    """
    g = Globals.of(ctx)
    if value == "-":
        value = sys.stdin.read()
    with g.kv_session() as client:
        reply = client.put(key, value, prev_value=prev_value)
    body = dict(reply.body) if isinstance(reply.body, dict) else {}
    render.kv_reply("put", key, body, _meta(reply), output=g.output)


def get(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="the key")],
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="read the local replica's copy (may be behind) instead of a linearizable read",
        ),
    ] = False,
) -> None:
    """Print KEY's value (exit 1 if the key does not exist)."""
    g = Globals.of(ctx)
    with g.kv_session() as client:
        reply = client.get(key, stale=stale)
    body = dict(reply.body) if isinstance(reply.body, dict) else {}
    render.kv_reply("get", key, body, _meta(reply), output=g.output)


def delete(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="the key")],
) -> None:
    """Delete KEY (exit 1 if the key does not exist)."""
    g = Globals.of(ctx)
    with g.kv_session() as client:
        reply = client.delete(key)
    body = dict(reply.body) if isinstance(reply.body, dict) else {}
    render.kv_reply("delete", key, body, _meta(reply), output=g.output)


def list_(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Option("--prefix", "-p", help="keys starting with this")] = "",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most N keys")] = None,
) -> None:
    """List keys and values in key order."""
    g = Globals.of(ctx)
    with g.kv_session() as client:
        reply, items = client.list_keys(prefix=prefix, limit=limit)
    truncated = isinstance(reply.body, dict) and bool(reply.body.get("truncated"))
    render.kv_list(items, output=g.output, prefix=prefix, truncated=truncated)


def register(app: typer.Typer) -> None:
    app.command(cls=GlobalsCommand, rich_help_panel="Key/value")(put)
    app.command(cls=GlobalsCommand, rich_help_panel="Key/value")(get)
    app.command(cls=GlobalsCommand, rich_help_panel="Key/value")(delete)
    app.command("list", cls=GlobalsCommand, rich_help_panel="Key/value")(list_)
