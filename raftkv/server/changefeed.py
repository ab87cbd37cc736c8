"""changefeed.py — the node's bounded window of recent KV changes, read by watches and long polls.

Contract:
- The driver feeds it from the apply path: ``publish(changes, applied_index)`` once per applied
  batch, with the changes in index order (a put that stored a value, a delete that removed a
  key; refused or deduplicated commands are no change), and ``reset(index)`` when the KV machine
  is replaced wholesale (start, snapshot installed). ``publish`` never waits for a reader: it
  appends, drops the oldest changes beyond the window, and wakes the readers.
- The window keeps at most ``window`` changes and ``max_bytes`` of keys + values. ``horizon`` is
  the highest index whose change may be missing (dropped, or before what this node applied):
  every change with index > horizon is in the window. A reader whose ``cursor`` (it has seen
  every change up to it) is below the horizon gets ``Compacted``: it fell behind (or asked for
  too old an index) and must reload the state and resume.
- ``read(cursor, prefix, timeout)`` returns the changes after ``cursor`` under ``prefix`` (at
  most ``limit``) and the new cursor; when it returns all of them the new cursor is the applied
  index, so an idle reader follows it (progress). It blocks up to ``timeout`` while the node has
  applied nothing after ``cursor``. ``close()`` makes every reader raise ``FeedClosed``.
- Thread-safety: one ``Condition`` guards everything; the driver holds it only to append.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from raftkv.errors import Compacted

__all__ = ["Change", "ChangeFeed", "FeedClosed"]

DEFAULT_MAX_BYTES = 64 << 20


class FeedClosed(Exception):
    """The node is shutting down: no more changes will come."""


@dataclass(frozen=True, slots=True)
class Change:
    """One applied change of one key; ``value`` is None for a delete."""

    index: int
    key: str
    value: str | None

    @property
    def op(self) -> str:
        return "delete" if self.value is None else "put"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "op": self.op, "key": self.key, "value": self.value}

    def size(self) -> int:
        return 64 + len(self.key) + (len(self.value) if self.value is not None else 0)


class ChangeFeed:
    def __init__(self, window: int = 10_000, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.max_bytes = max_bytes
        self._cond = threading.Condition()
        self._changes: list[Change] = []
        self._start = 0  # changes[_start:] are live (amortized trimming)
        self._bytes = 0
        self.horizon = 0
        self.index = 0  # the applied index the feed has seen
        self._closed = False

    # ------------------------------------------------------------------ driver side
    def publish(self, changes: Iterable[Change], applied_index: int) -> None:
        with self._cond:
            buf = self._changes
            for change in changes:
                buf.append(change)
                self._bytes += change.size()
            while len(buf) - self._start > self.window or (
                self._bytes > self.max_bytes and len(buf) - self._start > 1
            ):
                dropped = buf[self._start]
                self._start += 1
                self._bytes -= dropped.size()
                self.horizon = dropped.index
            if self._start > 1024 and 2 * self._start > len(buf):
                del buf[: self._start]
                self._start = 0
            if applied_index > self.index:
                self.index = applied_index
            self._cond.notify_all()

    def reset(self, index: int) -> None:
        """The state was replaced at ``index`` (snapshot): changes up to it are unknown here."""
        with self._cond:
            self._changes = []
            self._start = 0
            self._bytes = 0
            self.horizon = max(self.horizon, index)
            self.index = max(self.index, index)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every reader with ``FeedClosed`` (shutdown). Never blocks for long."""
        self._closed = True
        if self._cond.acquire(timeout=0.1):
            try:
                self._cond.notify_all()
            finally:
                self._cond.release()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ reader side
    def check(self, cursor: int) -> None:
        """Raise ``Compacted`` if changes after ``cursor`` are no longer all held."""
        with self._cond:
            self._check(cursor)

    def _check(self, cursor: int) -> None:
        if cursor < self.horizon:
            raise Compacted(
                f"changes after index {cursor} are no longer held by this node (it keeps the "
                f"last {self.window} changes); reload the state and watch from index "
                f">= {self.horizon}",
                self.horizon + 1,
            )

    def read(
        self,
        cursor: int,
        prefix: str,
        timeout: float,
        *,
        exact: bool = False,
        limit: int = 1000,
    ) -> tuple[list[Change], int]:
        """(changes after ``cursor`` whose key starts with — or, ``exact``, equals — ``prefix``,
        the new cursor). Raises ``Compacted`` or ``FeedClosed``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise FeedClosed("the node is shutting down")
                self._check(cursor)
                if self.index > cursor:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return [], cursor
                self._cond.wait(remaining)
            buf = self._changes
            first = bisect.bisect_right(buf, cursor, lo=self._start, key=_index_of)
            out: list[Change] = []
            for pos in range(first, len(buf)):
                change = buf[pos]
                key = change.key
                if key == prefix if exact else key.startswith(prefix):
                    out.append(change)
                    if len(out) >= limit:
                        return out, change.index
            return out, self.index


def _index_of(change: Change) -> int:
    return change.index
