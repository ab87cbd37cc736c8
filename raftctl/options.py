"""options.py — raftctl's global options, the backend they select, and the command wrapper.

Contract (docs/contracts.md §4): every command accepts ``--target local|kind``, ``--name``,
``--endpoints URL[,URL...]`` (env ``RAFTCTL_ENDPOINTS``), ``--token`` (env ``RAFTCTL_TOKEN``) and
``--output table|json``, plus ``--state-dir`` (local), ``--namespace`` and ``--kind-cluster``
(kind), ``--context`` and ``--cacert``. They may be given before the command (``raftctl --target
kind status``) or after it (``raftctl status --target kind``); precedence: after the command >
before it > environment (``RAFTCTL_<NAME>``) > the selected context of the config file
(``raftctl.configfile``: target, name, namespace, endpoints, token, cacert) > default.

``@command`` adds these options to a command function's signature (so Typer parses them), builds
the ``Globals`` the function receives as its first argument, and turns any ``RaftctlError`` into
one stderr line and its exit code — the same in ``raftctl`` and in Typer's ``CliRunner``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from raftctl import render
from raftctl.backends.base import Backend
from raftctl.backends.endpoints import EndpointsBackend
from raftctl.backends.kind import KindBackend, KindSettings
from raftctl.backends.local.backend import LocalBackend
from raftctl.client import KVClient, use_cacert
from raftctl.configfile import load_config
from raftctl.errors import RaftctlError, UsageError
from raftctl.render import Output
from raftctl.routing import request_order
from raftctl.shell import Runner, SubprocessRunner

__all__ = ["GLOBAL_PANEL", "Globals", "Target", "command", "runner_factory"]

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

_T = TypeVar("_T")

# name -> (annotation, env var, default)
_GLOBALS: dict[str, tuple[Any, str, Any]] = {
    "target": (
        Annotated[Target | None, typer.Option(
            "--target", help="where the cluster runs [env: RAFTCTL_TARGET] [default: local]",
            rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_TARGET", Target.local),
    "name": (
        Annotated[str | None, typer.Option(
            "--name", help="cluster name (kind: the Helm release) [env: RAFTCTL_NAME] "
            "[default: raftkv]", rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_NAME", "raftkv"),
    "endpoints": (
        Annotated[str | None, typer.Option(
            "--endpoints", help="talk straight to these nodes: URL[,URL...] "
            "[env: RAFTCTL_ENDPOINTS]", rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_ENDPOINTS", None),
    "token": (
        Annotated[str | None, typer.Option(
            "--token", help="bearer token: the cluster token (everything) or a client token "
            "(KV only) [env: RAFTCTL_TOKEN]",
            rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_TOKEN", None),
    "output": (
        Annotated[Output | None, typer.Option(
            "--output", "-o", help="table or json [env: RAFTCTL_OUTPUT] [default: table]",
            rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_OUTPUT", Output.table),
    "state_dir": (
        Annotated[Path | None, typer.Option(
            "--state-dir", help="local target: where clusters keep state "
            "[env: RAFTCTL_STATE_DIR] [default: $XDG_STATE_HOME/raftkv]",
            rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_STATE_DIR", None),
    "namespace": (
        Annotated[str | None, typer.Option(
            "--namespace", help="Kubernetes namespace [env: RAFTCTL_NAMESPACE] "
            "[default: default]", rich_help_panel=KIND_PANEL, show_default=False)],
        "RAFTCTL_NAMESPACE", "default"),
    "kind_cluster": (
        Annotated[str | None, typer.Option(
            "--kind-cluster", help="kind cluster name [env: RAFTCTL_KIND_CLUSTER] "
            "[default: raftkv]", rich_help_panel=KIND_PANEL, show_default=False)],
        "RAFTCTL_KIND_CLUSTER", "raftkv"),
    "context": (
        Annotated[str | None, typer.Option(
            "--context", help="use this context of the config file [env: RAFTCTL_CONTEXT] "
            "[default: its current-context]", rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_CONTEXT", None),
    "cacert": (
        Annotated[Path | None, typer.Option(
            "--cacert", help="PEM CA bundle to trust for https:// nodes [env: RAFTCTL_CACERT]",
            rich_help_panel=GLOBAL_PANEL, show_default=False)],
        "RAFTCTL_CACERT", None),
}


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

    @property
    def json(self) -> bool:
        return self.output is Output.json

    def local(self, **kw: Any) -> LocalBackend:
        if self.target is not Target.local:
            raise UsageError("this needs --target local")
        return LocalBackend(self.name, state_root=self.state_dir, token=self.token, **kw)

    def kind(self, tag: str = "dev", **settings: Any) -> KindBackend:
        """The kind backend; ``settings``: the other ``KindSettings`` (anti_affinity, wait_s)."""
        return KindBackend(KindSettings(release=self.name, namespace=self.namespace,
                                        cluster=self.kind_cluster, tag=tag, **settings),
                           runner_factory())

    def backend(self, *, use_endpoints: bool = True, **kw: Any) -> Backend:
        """The backend: --endpoints if given (and allowed), else the target's."""
        if self.endpoints:
            if not use_endpoints:
                raise UsageError("this command needs a target (--target local|kind), "
                                 "not --endpoints")
            return EndpointsBackend(self.endpoints, token=self.token)
        if self.target is Target.kind:
            return self.kind(**{k: v for k, v in kw.items() if k in _KIND_ONLY})
        return self.local(**{k: v for k, v in kw.items() if k not in _KIND_ONLY})

    @contextlib.contextmanager
    def kv_session(self, *, deadline: float = 20.0) -> Iterator[KVClient]:
        """A KV client for one command; closes it and the backend (e.g. kubectl proxy) after."""
        backend = self.backend()
        try:
            client = self.kv_client(backend, deadline=deadline)
            try:
                yield client
            finally:
                client.close()
        finally:
            backend.close()

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


def _resolve(name: str, given: Any, root: dict[str, Any],
             context: dict[str, str] | None = None) -> Any:
    _, env, default = _GLOBALS[name]
    if given is not None:
        return given
    if root.get(name) is not None:
        return root[name]
    raw = os.environ.get(env)
    where = env
    if not raw and context and context.get(name):
        raw, where = context[name], f"context field {name}"
    if raw:
        try:
            if name == "target":
                return Target(raw)
            if name == "output":
                return Output(raw)
        except ValueError as err:
            raise UsageError(f"{where}={raw!r} is not valid") from err
        return Path(raw) if name in ("state_dir", "cacert") else raw
    return default


def _trust(cacert: Path) -> None:
    """Verify https:// nodes against ``cacert`` (for the stdlib's ssl and for requests alike)."""
    if not cacert.is_file():
        raise UsageError(f"CA bundle {str(cacert)!r} (--cacert / context cacert) is not a file")
    os.environ["SSL_CERT_FILE"] = str(cacert)
    os.environ["REQUESTS_CA_BUNDLE"] = str(cacert)


def build_globals(values: dict[str, Any], root: dict[str, Any] | None = None) -> Globals:
    root = root or {}
    chosen, context = load_config().context(_resolve("context", values.get("context"), root))
    r = {name: _resolve(name, values.get(name), root, context) for name in _GLOBALS}
    if r["cacert"] is not None:
        _trust(r["cacert"])
    endpoints = tuple(u.strip() for u in (r["endpoints"] or "").split(",") if u.strip())
    use_cacert(r["cacert"])
    return Globals(
        target=r["target"], name=r["name"], endpoints=endpoints, token=r["token"] or None,
        output=r["output"], state_dir=r["state_dir"], namespace=r["namespace"],
        kind_cluster=r["kind_cluster"], context=chosen, cacert=r["cacert"],
    )  # fmt: skip


def root_options() -> list[inspect.Parameter]:
    """The global options as parameters (for the root callback)."""
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        for name, (ann, _, _) in _GLOBALS.items()
    ]


def command(fn: Callable[..., _T]) -> Callable[..., _T | None]:
    """Give ``fn(g: Globals, ...)`` the global options and one-line error handling."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "g"]
    ctx_param = inspect.Parameter(
        "raftctl_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
    )
    params = [*own, ctx_param, *root_options()]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> _T | None:
        values = {name: kwargs.pop(name, None) for name in _GLOBALS}
        ctx: typer.Context | None = kwargs.pop("raftctl_ctx", None)
        root = ctx.find_root().obj if ctx is not None else None
        try:
            g = build_globals(values, root if isinstance(root, dict) else None)
            return fn(g, **kwargs)
        except RaftctlError as err:
            render.error(err.message)
            raise typer.Exit(err.exit_code) from None

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
