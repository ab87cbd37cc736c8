"""watch.py — change notifications over HTTP (docs/watch.md): ``GET /v1/watch`` streams changes,
``GET /v1/kv/<key>?wait_index=N`` long-polls one key. Both read this node's ``ChangeFeed``
(changefeed.py): any replica serves them with what IT has applied, without asking the leader.

- ``GET /v1/watch?prefix=P&from_index=N``: ``200`` with ``application/x-ndjson``, one JSON object
  per line: first ``{"progress": true, "index": I}`` (where the stream starts), then every change
  after N under P in index order, ``{"index","op":"put"|"delete","key","value"}`` (``value`` null
  for a delete), and ``{"progress": true, "index": I}`` after ``--watch-progress-ms`` without a
  line (every change up to I has been sent). The stream ends with one error line
  (``{"error","code",...}``): ``compacted`` when the watcher fell behind the window,
  ``shutting_down`` when the node stops. N older than the window: ``410 compacted`` with
  ``oldest_index``. Without ``from_index`` it starts at the node's applied index.
- ``GET /v1/kv/<key>?wait_index=N[&timeout=30s]``: answers as soon as the key changes at an index
  > N: ``{"key","value","op","index","changed": true}`` (the first such change); after the
  timeout: ``{"key","value","index","changed": false,"checked_index"}`` (current value, null if
  absent; poll again with ``wait_index=checked_index``).
- Each watch or long poll holds a gunicorn thread: at most ``--max-watchers`` at once, and each
  also takes one of the node's request slots (so the Raft RPC keeps its reserved threads);
  beyond: ``503 too_many_watchers``. A watcher whose client stops reading is dropped once a
  write to it has made no progress for ``send_timeout`` (gunicorn's client socket gets a timeout),
  so it cannot hold its thread forever.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Request, Response, request

from raftkv.errors import (
    Compacted,
    InvalidKey,
    InvalidQuery,
    Overloaded,
    ShuttingDown,
    TooManyWatchers,
)
from raftkv.server.changefeed import ChangeFeed, FeedClosed
from raftkv.server.edge_node import EdgeNode
from raftkv.server.http_errors import json_response
from raftkv.server.keypath import query_value
from raftkv.server.query import check_query

__all__ = ["MAX_POLL_TIMEOUT_S", "WatchSlots", "long_poll", "parse_duration", "watch_blueprint"]

NDJSON = "application/x-ndjson"
DEFAULT_POLL_TIMEOUT_S = 30.0
MAX_POLL_TIMEOUT_S = 600.0
MIN_SEND_TIMEOUT_S = 10.0
_Q_WATCH = frozenset({"prefix", "from_index"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


class WatchSlots:
    """The bound on concurrent watches + long polls; each also holds a request slot."""

    def __init__(self, limit: int, request_slots: threading.BoundedSemaphore) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit) if limit > 0 else None
        self._request_slots = request_slots

    def acquire(self) -> None:
        if self._sem is None or not self._sem.acquire(blocking=False):
            raise TooManyWatchers(
                f"this node serves at most {self.limit} watches and long polls at once "
                "(--max-watchers); retry later or on another node"
            )
        if not self._request_slots.acquire(blocking=False):
            self._sem.release()
            raise Overloaded("too many requests in flight on this node; retry")

    def release(self) -> None:
        self._request_slots.release()
        assert self._sem is not None
        self._sem.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


def parse_index(req: Request, name: str, default: int | None = None) -> int:
    raw = req.args.get(name)
    if raw is None:
        if default is None:
            raise InvalidQuery(f"{name} is required")
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidQuery(f"{name} must be a non-negative integer, got {raw[:40]!r}")
    return int(raw)


def parse_duration(raw: str | None, default: float = DEFAULT_POLL_TIMEOUT_S) -> float:
    """``30s``, ``500ms``, ``2m`` or a bare number of seconds; 0 < d <= MAX_POLL_TIMEOUT_S."""
    if raw is None:
        return default
    m = _DURATION.match(raw.strip())
    if m is None:
        raise InvalidQuery(f"timeout must look like 30s, 500ms or 2m, got {raw[:40]!r}")
    value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
    if not 0 < value <= MAX_POLL_TIMEOUT_S:
        raise InvalidQuery(f"timeout must be in (0, {MAX_POLL_TIMEOUT_S:g}s], got {raw[:40]!r}")
    return value


def send_timeout(progress_interval: float) -> float:
    """How long a write to a watcher may block before the watcher is dropped."""
    return max(MIN_SEND_TIMEOUT_S, 4 * progress_interval)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _progress(index: int) -> bytes:
    return _line({"progress": True, "index": index})


def watch_blueprint(node: EdgeNode, slots: WatchSlots) -> Blueprint:
    """The blueprint serving ``GET /v1/watch`` for ``node``; ``slots`` bounds the watchers."""
    bp = Blueprint("watch", __name__)

    @bp.route("/v1/watch", methods=["GET"])
    def watch() -> Response:
        return _watch(node, slots)

    return bp


def _watch(node: EdgeNode, slots: WatchSlots) -> Response:
    check_query(request, _Q_WATCH)
    # the same key codec as every other key-carrying parameter (keypath.query_value)
    prefix = query_value(request.environ, "prefix", error=InvalidKey) or ""
    feed = node.feed
    cursor = parse_index(request, "from_index", feed.index)
    if feed.closed or node.draining:
        raise ShuttingDown(f"node {node.config.id} is shutting down; watch another node")
    feed.check(cursor)
    interval = node.config.watch_progress_ms / 1000.0
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:  # a client that stops reading must not pin this thread forever
        sock.settimeout(send_timeout(interval))
    slots.acquire()
    try:
        stream = _stream(feed, prefix, cursor, interval, slots)
    except BaseException:
        slots.release()
        raise
    return Response(
        stream, mimetype=NDJSON, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def _stream(
    feed: ChangeFeed, prefix: str, cursor: int, interval: float, slots: WatchSlots
) -> Iterator[bytes]:
    """The watch body; releases its slot when it ends or the client goes away."""
    try:
        yield _progress(max(cursor, 0))
        sent = time.monotonic()
        while True:
            wait = max(0.0, sent + interval - time.monotonic())
            try:
                changes, cursor = feed.read(cursor, prefix, wait)
            except Compacted as err:  # fell behind the window: cut off
                yield _line({**err.payload(), "error": f"watcher fell behind: {err}"})
                return
            except FeedClosed:
                yield _line(
                    ShuttingDown(
                        "node is shutting down; resume the watch on another "
                        "node from the last index received"
                    ).payload()
                )
                return
            if changes:
                yield b"".join(_line(c.to_json()) for c in changes)
                sent = time.monotonic()
            elif time.monotonic() - sent >= interval:
                yield _progress(cursor)
                sent = time.monotonic()
    finally:
        slots.release()


def long_poll(node: EdgeNode, slots: WatchSlots, key: str, req: Request) -> Response:
    """``GET /v1/kv/<key>?wait_index=N&timeout=30s`` (see the module docstring)."""
    wait_index = parse_index(req, "wait_index")
    timeout = parse_duration(req.args.get("timeout"))
    feed = node.feed
    if feed.closed:
        raise ShuttingDown(f"node {node.config.id} is shutting down; retry on another node")
    feed.check(wait_index)
    with slots.held():
        cursor = wait_index
        deadline = time.monotonic() + timeout
        while True:
            try:
                changes, cursor = feed.read(
                    cursor, key, max(0.0, deadline - time.monotonic()), exact=True, limit=1
                )
            except FeedClosed:
                raise ShuttingDown(
                    f"node {node.config.id} is shutting down; retry on another node"
                ) from None
            if changes:
                body: dict[str, Any] = {**changes[0].to_json(), "changed": True}
                return json_response(body)
            if time.monotonic() >= deadline:
                break
    found = node.get(key)
    return json_response(
        {
            "key": key,
            "value": None if found is None else found[0],
            "index": 0 if found is None else found[1],
            "changed": False,
            "checked_index": cursor,
        }
    )
