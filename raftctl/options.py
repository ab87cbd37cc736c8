"""options.py — raftctl's global options, the backend they select, and the command classes.

Contract (docs/contracts.md §4): every command accepts ``--target local|kind``, ``--name``,
``--endpoints URL[,URL...]`` (env ``RAFTCTL_ENDPOINTS``), ``--token`` (env ``RAFTCTL_TOKEN``) and
``--output table|json``, plus ``--state-dir`` (local), ``--namespace`` and ``--kind-cluster``
(kind), ``--context`` and ``--cacert``. They may be given before the command (``raftctl --target
kind status``) or after it (``raftctl status --target kind``); precedence: after the command >
before it > environment (``RAFTCTL_<NAME>``) > the selected context of the config file
(``raftctl.configfile``: target, name, namespace, endpoints, token, cacert) > default.

The options are declared ONCE, as Typer options with Typer's own ``envvar=`` (``_declared``), and
shared at the click level: ``GlobalsGroup`` (the root app) and ``GlobalsCommand`` (every command,
``app.command(cls=GlobalsCommand)``) add them to their parameters, take their values out of
``ctx.params`` with the source click recorded (command line or environment), and the command
builds the resolved ``Globals`` once (``Globals.of(ctx)`` in the command function). A
``RaftctlError`` raised by a command becomes one stderr line and its exit code — the same in
``raftctl`` and in Typer's ``CliRunner``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer import _click as click  # Typer vendors click: its Context/Parameter types live here
from typer.core import TyperCommand, TyperGroup

from raftctl import render
from raftctl.backends.base import Backend
from raftctl.backends.endpoints import EndpointsBackend
from raftctl.backends.kind import KindBackend, KindSettings
from raftctl.backends.local import LocalBackend
from raftctl.client import KVClient, use_cacert
from raftctl.configfile import load_config
from raftctl.errors import RaftctlError, UsageError
from raftctl.render import Output
from raftctl.routing import request_order
from raftctl.shell import Runner, SubprocessRunner

__all__ = [
    "GLOBAL_PANEL",
    "Globals",
    "GlobalsCommand",
    "GlobalsGroup",
    "Target",
    "build_globals",
    "runner_factory",
]

GLOBAL_PANEL = "Global options"
KIND_PANEL = "Kind target"


class Target(StrEnum):
    """Where the cluster runs."""

    local = "local"
    kind = "kind"


# backend() options only the kind target takes
_KIND_ONLY = ("tag", "base", "anti_affinity", "wait_s")

# Tests replace this to record the external commands the kind target runs.
runner_factory: Callable[[], Runner] = SubprocessRunner


def _declared(
    target: Annotated[
        Target | None,
        typer.Option(
            "--target",
            envvar="RAFTCTL_TARGET",
            help="where the cluster runs [default: local]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="RAFTCTL_NAME",
            help="cluster name (kind: the Helm release) [default: raftkv]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    endpoints: Annotated[
        str | None,
        typer.Option(
            "--endpoints",
            envvar="RAFTCTL_ENDPOINTS",
            help="talk straight to these nodes: URL[,URL...]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="RAFTCTL_TOKEN",
            help="bearer token: the cluster token (everything) or a client token (KV only)",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
            envvar="RAFTCTL_OUTPUT",
            help="table or json [default: table]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="RAFTCTL_STATE_DIR",
            help="local target: where clusters keep state [default: $XDG_STATE_HOME/raftkv]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            envvar="RAFTCTL_NAMESPACE",
            help="Kubernetes namespace [default: default]",
            rich_help_panel=KIND_PANEL,
            show_default=False,
        ),
    ] = None,
    kind_cluster: Annotated[
        str | None,
        typer.Option(
            "--kind-cluster",
            envvar="RAFTCTL_KIND_CLUSTER",
            help="kind cluster name [default: raftkv]",
            rich_help_panel=KIND_PANEL,
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            envvar="RAFTCTL_CONTEXT",
            help="use this context of the config file [default: its current-context]",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            envvar="RAFTCTL_CACERT",
            help="PEM CA bundle to trust for https:// nodes",
            rich_help_panel=GLOBAL_PANEL,
            show_default=False,
        ),
    ] = None,
) -> None:
    """The global options, declared once (never called: their click parameters are shared)."""


def _click_params(declaration: Callable[..., None]) -> list[click.Parameter]:
    """The click parameters Typer builds for ``declaration``'s options (envvar and all)."""
    holder = typer.Typer(add_completion=False)
    holder.command()(declaration)
    return list(typer.main.get_command(holder).params)


GLOBAL_PARAMS: list[click.Parameter] = _click_params(_declared)
GLOBAL_NAMES: tuple[str, ...] = tuple(p.name for p in GLOBAL_PARAMS if p.name)
_GIVEN = "raftctl.globals.given"  # ctx.meta: level ("root" | "command") -> name -> (value, source)
_RESOLVED = "raftctl.globals"  # ctx.meta: the command's Globals


@dataclass(frozen=True)
class Globals:
    """The resolved global options of one command run."""

    target: Target = Target.local
    name: str = "raftkv"
    endpoints: tuple[str, ...] = ()
    token: str | None = None
    output: Output = Output.table
    state_dir: Path | None = None
    namespace: str = "default"
    kind_cluster: str = "raftkv"
    context: str | None = None
    cacert: Path | None = None

    @classmethod
    def of(cls, ctx: typer.Context) -> Globals:
        """The resolved global options of the command running in ``ctx``."""
        resolved = ctx.meta.get(_RESOLVED)
        if not isinstance(resolved, Globals):
            raise RuntimeError("Globals.of() outside a GlobalsCommand")
        return resolved

    @property
    def json(self) -> bool:
        return self.output is Output.json

    def local(self, **kw: Any) -> LocalBackend:
        if self.target is not Target.local:
            raise UsageError("this needs --target local")
        return LocalBackend(self.name, state_root=self.state_dir, token=self.token, **kw)

    def kind(self, tag: str = "dev", **settings: Any) -> KindBackend:
        """The kind backend; ``settings``: the other ``KindSettings`` (anti_affinity, wait_s)."""
        return KindBackend(
            KindSettings(
                release=self.name,
                namespace=self.namespace,
                cluster=self.kind_cluster,
                tag=tag,
                **settings,
            ),
            runner_factory(),
        )

    def target_backend(self, **kw: Any) -> LocalBackend | KindBackend:
        """The target's backend, for commands that need a target (not --endpoints)."""
        if self.endpoints:
            raise UsageError("this command needs a target (--target local|kind), not --endpoints")
        if self.target is Target.kind:
            return self.kind(**{k: v for k, v in kw.items() if k in _KIND_ONLY})
        return self.local(**{k: v for k, v in kw.items() if k not in _KIND_ONLY})

    def backend(self, *, use_endpoints: bool = True, **kw: Any) -> Backend:
        """The backend: --endpoints if given (and allowed), else the target's."""
        if self.endpoints and use_endpoints:
            return EndpointsBackend(self.endpoints, token=self.token)
        return self.target_backend(**kw)

    @contextlib.contextmanager
    def kv_session(self, *, deadline: float = 20.0) -> Iterator[KVClient]:
        """A KV client for one command; closes it and the backend (e.g. kubectl proxy) after."""
        with self.backend() as backend, self.kv_client(backend, deadline=deadline) as client:
            yield client

    def kv_client(self, backend: Backend, *, deadline: float = 20.0) -> KVClient:
        """A KV client over every replica (it learns the leader from the first answer)."""
        replicas = backend.replicas()
        if backend.target == Target.kind.value:  # skip dead pods' timeouts: leader first
            replicas = request_order(replicas, token=self.token)
        return KVClient(
            [r.url for r in replicas],
            ids={r.id: r.url for r in replicas},
            token=self.token,
            deadline=deadline,
        )


_DEFAULTS = Globals()


def _from_text(name: str, raw: str, where: str) -> Any:
    """A context file's string as the option's type."""
    try:
        if name == "target":
            return Target(raw)
        if name == "output":
            return Output(raw)
    except ValueError as err:
        raise UsageError(f"{where}={raw!r} is not valid") from err
    return Path(raw) if name in ("state_dir", "cacert") else raw


def _resolve(
    name: str,
    given: Mapping[str, Any],
    root: Mapping[str, Any],
    env: Mapping[str, Any],
    context: Mapping[str, str] | None,
) -> Any:
    for layer in (given, root, env):
        if layer.get(name) is not None:
            return layer[name]
    if context and context.get(name):
        return _from_text(name, context[name], f"context field {name}")
    return getattr(_DEFAULTS, name) if name != "endpoints" else None


def _trust(cacert: Path) -> None:
    """Verify https:// nodes against ``cacert`` (for the stdlib's ssl and for requests alike)."""
    if not cacert.is_file():
        raise UsageError(f"CA bundle {str(cacert)!r} (--cacert / context cacert) is not a file")
    os.environ["SSL_CERT_FILE"] = str(cacert)
    os.environ["REQUESTS_CA_BUNDLE"] = str(cacert)


def build_globals(
    values: Mapping[str, Any],
    root: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
) -> Globals:
    """Resolve the global options: ``values`` given after the command > ``root`` given before it
    > ``env`` (the values Typer read from ``RAFTCTL_*``) > the selected context > default."""
    root, env = root or {}, env or {}
    chosen, context = load_config().context(_resolve("context", values, root, env, None))
    r = {name: _resolve(name, values, root, env, context) for name in GLOBAL_NAMES}
    if r["cacert"] is not None:
        _trust(r["cacert"])
    endpoints = tuple(u.strip() for u in (r["endpoints"] or "").split(",") if u.strip())
    use_cacert(r["cacert"])
    return Globals(
        target=r["target"], name=r["name"], endpoints=endpoints, token=r["token"] or None,
        output=r["output"], state_dir=r["state_dir"], namespace=r["namespace"],
        kind_cluster=r["kind_cluster"], context=chosen, cacert=r["cacert"],
    )  # fmt: skip


def _take_globals(ctx: click.Context, level: str) -> None:
    """Move the global options out of ``ctx.params`` (the function does not take them) into
    ``ctx.meta`` (shared by the root's and the command's contexts), with their source."""
    given: dict[str, dict[str, tuple[Any, str]]] = ctx.meta.setdefault(_GIVEN, {})
    taken = {}
    for name in GLOBAL_NAMES:
        value = ctx.params.pop(name, None)
        source = ctx.get_parameter_source(name)
        taken[name] = (value, source.name if source is not None else "DEFAULT")
    given[level] = taken


def _layer(ctx: click.Context, level: str, source: str) -> dict[str, Any]:
    taken = ctx.meta.get(_GIVEN, {}).get(level, {})
    return {name: value for name, (value, src) in taken.items() if src == source}


def _with_globals(
    own: list[click.Parameter], help_option: click.Parameter | None
) -> list[click.Parameter]:
    """A command's own parameters, then the shared global options, then ``--help``."""
    rest = [p for p in own if p is not help_option]
    return [*rest, *GLOBAL_PARAMS, *([help_option] if help_option in own else [])]


class GlobalsGroup(TyperGroup):
    """The root app: accepts the global options before the command."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _with_globals(super().get_params(ctx), self.get_help_option(ctx))

    def invoke(self, ctx: click.Context) -> Any:
        _take_globals(ctx, "root")
        return super().invoke(ctx)


class GlobalsCommand(TyperCommand):
    """A raftctl command: accepts the global options after it, resolves them into the
    ``Globals`` its function reads with ``Globals.of(ctx)``, and turns a ``RaftctlError`` into
    one stderr line and its exit code."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _with_globals(super().get_params(ctx), self.get_help_option(ctx))

    def invoke(self, ctx: click.Context) -> Any:
        _take_globals(ctx, "command")
        try:
            ctx.meta[_RESOLVED] = build_globals(
                _layer(ctx, "command", "COMMANDLINE"),
                _layer(ctx, "root", "COMMANDLINE"),
                {**_layer(ctx, "root", "ENVIRONMENT"), **_layer(ctx, "command", "ENVIRONMENT")},
            )
            return super().invoke(ctx)
        except RaftctlError as err:
            render.error(err.message)
            raise typer.Exit(err.exit_code) from None
