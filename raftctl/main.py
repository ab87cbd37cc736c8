"""main.py — the root ``raftctl`` Typer app and the console-script entry point.

Contract: ``app`` registers every command group; the root app (``GlobalsGroup``) accepts the
global options (they are also accepted after each command, see ``raftctl.options``), its callback
``--version``.
``main()`` runs the app; usage errors exit 2, runtime errors 1 with ONE line on stderr, Ctrl-C 130.
Tracebacks are never shown for expected failures (Typer's pretty exceptions are off).
"""

import sys
from typing import Annotated

import typer

from raftctl import __version__, render
from raftctl.commands import (
    bench,
    chaos,
    cluster,
    context,
    image,
    kv,
    member,
    recover,
    snapshot,
    verify,
    watch,
)
from raftctl.errors import RaftctlError
from raftctl.options import GlobalsGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="raftctl",
    cls=GlobalsGroup,
    help="Operate raftkv clusters: run one locally or on kind, read and write keys, inject "
    "faults, verify and benchmark.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        render.line(f"raftctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="show the version and exit"
        ),
    ] = False,
) -> None:
    """Operate raftkv clusters."""
    del version


cluster.register(app)
member.register(app)
kv.register(app)
watch.register(app)
app.add_typer(chaos.app, name="chaos", rich_help_panel="Faults")
app.add_typer(snapshot.app, name="snapshot", rich_help_panel="Operations")
recover.register(app)
verify.register(app)
bench.register(app)
image.register(app)
app.add_typer(context.app, name="context", rich_help_panel="Configuration")


def _click_error(err: Exception) -> int | None:
    """One line for the parser's errors (Typer vendors click, so match by class name)."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if "NoArgsIsHelpError" in names:
        err.show()  # type: ignore[attr-defined]  # the help text, as `raftctl` alone shows
        return 0
    if "ClickException" in names:
        message = err.format_message()  # type: ignore[attr-defined]
        ctx = getattr(err, "ctx", None)
        if ctx is not None and "UsageError" in names:
            message += f" (see `{ctx.command_path} --help`)"
        render.error(message)
        return int(getattr(err, "exit_code", 2))
    if "Abort" in names:
        render.error("aborted")
        return 1
    return None


def main() -> None:
    """Console-script entry point: exit 0, 1 (runtime error) or 2 (usage error), one line."""
    try:
        code = app(standalone_mode=False)
    except RaftctlError as err:  # raised outside a command (e.g. option parsing helpers)
        render.error(err.message)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        render.error("interrupted")
        sys.exit(130)
    except Exception as err:
        mapped = _click_error(err)
        if mapped is None:
            raise
        sys.exit(mapped)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
