"""httptool.py — ``raftkv http METHOD URL``: a tiny curl for the image (stdlib only).

The image has no curl (neither base ships it and the build runs offline), yet the docs tell you to
talk to pods by their DNS names from inside the cluster. This is that tool::

    raftkv http GET http://raft-0.raft-service.default.svc.cluster.local:8000/v1/status
    raftkv http PUT http://raftkv.default.svc.cluster.local:8000/v1/kv/greeting --data hello
    raftkv http POST http://raft-0...:8000/v1/admin/snapshot -H "Authorization: Bearer $TOKEN"

The response body goes to stdout (a newline added when it has none). Exit status, like ``curl
--fail-with-body``: 0 for 1xx-3xx, 1 for an HTTP error status (``HTTP <status> <reason>`` on
stderr), 1 for a connection failure (one line on stderr), 2 for bad arguments. ``-i`` also prints
the status line and the headers, to stderr.
"""

from __future__ import annotations

import http.client
import sys
from urllib.parse import urlsplit

__all__ = ["METHODS", "request"]

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


class UsageError(ValueError):
    """A bad argument: exit 2."""


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"URL must be http:// or https://, got {url!r}")
    if not parts.hostname:
        raise UsageError(f"URL has no host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"URL has a bad port: {url!r}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def _headers(raw: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"header must be 'Name: value', got {item!r}")
        out[name.strip()] = value.strip()
    return out


def request(
    method: str,
    url: str,
    *,
    data: str | None = None,
    headers: list[str] | None = None,
    timeout: float = 10.0,
    include: bool = False,
) -> int:
    """Do one request, print the outcome; return the exit status."""
    try:
        method = method.upper()
        if method not in METHODS:
            raise UsageError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if timeout <= 0:
            raise UsageError(f"--timeout must be positive, got {timeout}")
        scheme, host, port, path = _split(url)
        hdrs = _headers(headers or [])
    except UsageError as err:
        print(f"raftkv http: error: {err}", file=sys.stderr)
        return 2
    body = data.encode() if data is not None else None
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
    except (OSError, http.client.HTTPException) as err:
        print(f"raftkv http: {method} {url} failed: {err or type(err).__name__}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if include:
        print(f"HTTP {resp.status} {resp.reason}", file=sys.stderr)
        for name, value in resp.getheaders():
            print(f"{name}: {value}", file=sys.stderr)
    if payload:
        sys.stdout.write(payload.decode("utf-8", errors="replace"))
        if not payload.endswith(b"\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    if resp.status >= 400:
        if not include:
            print(f"HTTP {resp.status} {resp.reason}", file=sys.stderr)
        return 1
    return 0
