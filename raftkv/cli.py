"""cli.py — the ``raftkv`` command: ``serve``, ``check-data DIR``, ``version``.

``raftkv serve`` reads flags and ``RAFTKV_*`` env vars (flag wins; see config.py and
docs/node.md), validates them, and runs the node under gunicorn (embedded through its application
API: one gthread worker, the driver started inside it). A bad option prints ONE line on stderr
and exits 2; a node that fails at start (e.g. corrupt data dir) exits non-zero with one log line.

``raftkv restore|recover|backup`` are offline data-dir tools (cli_datadir.py).
``raftkv check-data DIR`` verifies a data directory offline (``raftkv.storage.check``) and exits
with its code. ``raftkv version`` prints the version. ``raftkv http METHOD URL`` is a tiny curl for
the image (``raftkv.httptool``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from raftkv import __version__, cli_datadir
from raftkv.config import FLAG_OPTIONS, OPTIONS, load_config
from raftkv.errors import ConfigError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line on stderr, exit 2 (argparse prints the whole usage otherwise)."""
        print(f"raftkv: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="raftkv", description="raftkv: a replicated key/value store (Raft).")
    parser.add_argument("--version", action="version", version=f"raftkv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    serve = sub.add_parser(
        "serve",
        help="run a node (HTTP KV API + Raft RPC on one port)",
        description="Run one raftkv node under gunicorn. Every flag has a RAFTKV_* env var; "
        "the flag wins.",
        epilog="example: raftkv serve --id raft-0 --port 8001 --data-dir d0 "
        "--peers raft-0=http://127.0.0.1:8001,raft-1=http://127.0.0.1:8002,"
        "raft-2=http://127.0.0.1:8003",
    )
    for name, (flag, env, text) in OPTIONS.items():
        if name in FLAG_OPTIONS:
            serve.add_argument(
                flag,
                dest=name,
                default=None,
                nargs="?",
                const="true",
                metavar="BOOL",
                help=f"{text} [env {env}]",
            )
            continue
        serve.add_argument(
            flag, dest=name, default=None, metavar=name.upper(), help=f"{text} [env {env}]"
        )
    check = sub.add_parser("check-data", help="verify a data directory offline")
    check.add_argument("path", metavar="DIR", help="the node's --data-dir")
    sub.add_parser("version", help="print the version")
    http = sub.add_parser(
        "http",
        help="a tiny curl: one HTTP request, the body to stdout (the image has no curl)",
        description="One HTTP request; the body goes to stdout. Exit 0 for 1xx-3xx, 1 for an "
        "HTTP error or a connection failure, 2 for bad arguments.",
        epilog="example: raftkv http GET "
        "http://raft-0.raft-service.default.svc.cluster.local:8000/v1/status",
    )
    http.add_argument("method", metavar="METHOD", help="GET, PUT, POST, DELETE or HEAD")
    http.add_argument("url", metavar="URL")
    http.add_argument("-d", "--data", default=None, help="request body (UTF-8 text)")
    http.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    http.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    http.add_argument(
        "-i",
        "--include",
        action="store_true",
        help="also print the status line and headers (to stderr)",
    )
    cli_datadir.add_parsers(sub)  # restore, recover, backup (offline data-dir tools)
    return parser


def _serve(args: argparse.Namespace) -> int:
    flags = {name: getattr(args, name) for name in OPTIONS}
    try:
        config = load_config(flags, os.environ, socket.gethostname())
    except ConfigError as err:
        print(f"raftkv: error: {err}", file=sys.stderr)
        return 2
    from raftkv.identity import resolve_identity
    from raftkv.server.logs import setup_logging
    from raftkv.storage.errors import StorageError

    setup_logging(config.id, config.log_level)

    try:  # early, for a one-line error; create_app resolves again (reads the same records)
        resolve_identity(config)
    except ConfigError as err:
        print(f"raftkv: error: {err}", file=sys.stderr)
        return 2
    except StorageError as err:  # a damaged CLUSTER_ID or MEMBERS.json
        print(f"raftkv: error: {err}", file=sys.stderr)
        return 1
    from raftkv.server.gunicorn_app import NodeApplication

    NodeApplication(config).run()
    return 0


def _check_data(path: str) -> int:
    if not os.path.isdir(path):
        print(f"raftkv: error: {path}: not a directory", file=sys.stderr)
        return 2
    from raftkv.storage.check import run_check_data

    return run_check_data(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "check-data":
        return _check_data(args.path)
    if args.command == "http":
        from raftkv.httptool import request

        return request(
            args.method,
            args.url,
            data=args.data,
            headers=args.header,
            timeout=args.timeout,
            include=args.include,
        )
    if args.command in cli_datadir.COMMANDS:
        return cli_datadir.run(args)
    if args.command == "version":
        print(f"raftkv {__version__}")
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
