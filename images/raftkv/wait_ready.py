#!/usr/bin/env python3
"""raftkv-wait-ready — wait until an HTTP endpoint answers 2xx, for init containers.

    raftkv-wait-ready [--timeout SECONDS] [--all] [--cacert PEM] URL [URL...]

Polls every URL about once a second; exits 0 as soon as one of them (with --all: every one) has
answered 2xx, or 1 with one line naming what was not ready when the timeout expires. Standard
library only: it runs in the raftkv image before `raftctl verify` (the chart's client Pod waits
for `<service>:8000/readyz`).
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
import urllib.error
import urllib.request


def _probe(url: str, ctx: ssl.SSLContext | None = None) -> str | None:
    """None when the URL answered 2xx, else why not (one short phrase)."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        return str(getattr(err, "reason", err))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="raftkv-wait-ready", description="wait until an HTTP endpoint answers 2xx"
    )
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--all", action="store_true", help="wait for every URL, not just one")
    parser.add_argument("--cacert", help="PEM CA bundle to trust for https:// URLs")
    args = parser.parse_args(argv)
    ctx = ssl.create_default_context(cafile=args.cacert) if args.cacert else None
    deadline = time.monotonic() + args.timeout
    pending = {url: "not tried" for url in args.urls}
    while True:
        for url in list(pending):
            why = _probe(url, ctx)
            if why is None:
                del pending[url]
                if not args.all:
                    print(f"ready: {url}", flush=True)
                    return 0
            else:
                pending[url] = why
        if not pending:
            print(f"ready: {' '.join(args.urls)}", flush=True)
            return 0
        if time.monotonic() >= deadline:
            detail = "; ".join(f"{u}: {w}" for u, w in pending.items())
            print(
                f"raftkv-wait-ready: not ready after {args.timeout:g}s: {detail}", file=sys.stderr
            )
            return 1
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
