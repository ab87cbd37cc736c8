"""watchstream.py — follow a raftkv cluster's changes (``GET /v1/watch``), resuming across failures.

Contract: ``WatchStream(urls, prefix=, from_index=)`` yields each change under the prefix once, in
index order, as the node sends it (``{"index","op","key","value"}``). It connects to one replica
(any: every replica streams what it applied); when the stream breaks — the node dies, restarts,
shuts down, stops sending (no line, not even a progress line, within ``read_timeout``) — it
reconnects to the next replica with ``from_index`` = the last index it saw (a change or a
progress line), so nothing is missed or repeated. A 410 (or a final ``compacted`` line: the
watcher fell behind the node's window) raises ``WatchCompacted``; no replica reachable for
``deadline`` seconds raises ``Unavailable``. One streamed ``requests`` response at a time
(``raftctl.client.Transport.stream``: the same TLS trust and token as every raftctl request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

import requests

from raftctl.client import (
    STREAM_ERRORS,
    NodeUnreachable,
    Transport,
    iter_lines,
    root_cause,
)
from raftctl.errors import NodeError, Unavailable
from raftkv.keycodec import encode_query_value

__all__ = ["WatchCompacted", "WatchStream"]

_RETRY = frozenset({500, 502, 503, 504})


class WatchCompacted(NodeError):
    """The node no longer holds the changes after the requested index."""

    def __init__(self, after: int, oldest: Any) -> None:
        super().__init__(
            f"changes after index {after} are no longer held by the cluster (oldest index "
            f"{oldest}): re-read the keys (raftctl list) and watch again from a newer index",
            status=410,
        )
        self.after = after
        self.oldest = oldest


class _Broken(Exception):
    """This connection is done; try the next replica."""


class WatchStream:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        prefix: str = "",
        from_index: int | None = None,
        token: str | None = None,
        read_timeout: float = 30.0,
        deadline: float = 60.0,
        on_reconnect: Callable[[str, int | None, str], None] | None = None,
    ) -> None:
        if not urls:
            raise ValueError("WatchStream needs at least one URL")
        self.urls = list(urls)
        self.prefix = prefix
        self.cursor = from_index  # every change up to it has been yielded (None: from now)
        self.token = token
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.on_reconnect = on_reconnect
        self.reconnects = 0
        self._transport = Transport(timeout=read_timeout, token=token)
        self._resp: requests.Response | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the current stream's connection (the next one is made on demand)."""
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        self._transport.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        turn = 0
        failing_since: float | None = None
        delay = 0.05
        last_error = "no attempt made"
        while True:
            url = self.urls[turn % len(self.urls)]
            try:
                for change in self._follow(url):
                    failing_since = None
                    delay = 0.05
                    yield change
                raise _Broken("the node ended the stream")
            except _Broken as err:
                last_error = f"{url}: {err}"
            finally:
                self.close()
            now = time.monotonic()
            if failing_since is None:
                failing_since = now
            elif now - failing_since > self.deadline:
                raise Unavailable(
                    f"no replica could serve the watch within {self.deadline:.0f}s: {last_error}"
                )
            turn += 1
            self.reconnects += 1
            if self.on_reconnect is not None:
                self.on_reconnect(self.urls[turn % len(self.urls)], self.cursor, last_error)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _follow(self, url: str) -> Iterator[dict[str, Any]]:
        query = "prefix=" + encode_query_value(self.prefix)  # the one key codec (raftkv.keycodec)
        if self.cursor is not None:
            query += f"&from_index={self.cursor}"
        try:
            resp = self._transport.stream(
                url,
                "/v1/watch?" + query,
                headers={"Accept": "application/x-ndjson"},
                timeout=self.read_timeout,
            )
        except NodeUnreachable as err:
            raise _Broken(err.why) from None
        self._resp = resp
        try:
            if resp.status_code != 200:
                self._refuse(resp.status_code, resp.content)
            for raw in iter_lines(resp):
                yield from self._line(raw)
        except STREAM_ERRORS as err:
            raise _Broken(root_cause(err)) from None

    def _refuse(self, status: int, raw: bytes) -> None:
        body = _parse(raw)
        if status == 410:
            raise WatchCompacted(self.cursor or 0, body.get("oldest_index"))
        message = str(body.get("error") or f"HTTP {status}")
        if status in _RETRY:
            raise _Broken(f"answered {status}: {message}")
        raise NodeError(f"watch refused ({status}): {message}", status=status)

    def _line(self, raw: bytes) -> Iterator[dict[str, Any]]:
        if not raw.strip():
            return
        obj = _parse(raw)
        if not obj:
            raise _Broken(f"unreadable line {raw[:80]!r}")
        if "error" in obj:
            if obj.get("code") == "compacted":
                raise WatchCompacted(self.cursor or 0, obj.get("oldest_index"))
            raise _Broken(str(obj["error"]))
        index = obj.get("index")
        if not isinstance(index, int):
            raise _Broken(f"line without an index: {raw[:80]!r}")
        if obj.get("progress"):
            if self.cursor is None or index > self.cursor:
                self.cursor = index
            return
        if self.cursor is not None and index <= self.cursor:
            return  # already yielded (defensive: a node never sends it twice)
        self.cursor = index
        yield obj


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}
