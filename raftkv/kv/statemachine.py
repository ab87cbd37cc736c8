"""statemachine.py — the deterministic key/value state machine the Raft log drives.

Contract:
- ``apply(index, term, data)`` applies one committed ``NORMAL`` entry and returns its ``Result``;
  ``apply_noop(index, term)`` records a NOOP. Indexes must strictly increase. Applying the same
  entries in the same order gives the same state on every replica (no clock, no randomness).
- Exactly-once: a command carrying ``(client_id, seq)`` that was already applied returns the
  recorded ``Result`` and changes nothing. The session table is bounded: at most
  ``max_clients`` clients (least recently used evicted first) and the last ``window`` results per
  client. A seq older than a full window raises ``RequestIdConflict`` (it cannot be checked).
  Eviction depends only on the applied sequence, so every replica evicts alike.
- ``snapshot()`` encodes data + sessions + applied index/term; ``restore(blob)`` replaces the
  whole state with it.
- Thread-safety: the driver thread is the only writer; request threads read through ``get`` /
  ``list_prefix`` / ``lookup_session``. ``lock`` guards every access; the driver takes it once per
  batch of entries (``with sm.lock: ...``) and the apply methods do not take it themselves.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections import OrderedDict
from typing import Any

from raftkv.errors import RequestIdConflict
from raftkv.kv.commands import (
    Command,
    CommandDecodeError,
    Op,
    Outcome,
    Result,
    decode_command,
)

__all__ = ["KVStateMachine", "SnapshotDecodeError"]


class SnapshotDecodeError(ValueError):
    """A snapshot blob does not decode."""


class KVStateMachine:
    """Keys -> (value, last-modified index), plus the bounded exactly-once session table."""

    def __init__(self, *, max_clients: int = 10_000, window: int = 64) -> None:
        self.lock = threading.RLock()
        self.max_clients = max_clients
        self.window = window
        self._data: dict[str, tuple[str, int]] = {}
        self._sessions: OrderedDict[str, OrderedDict[int, Result]] = OrderedDict()
        self.applied_index = 0
        self.applied_term = 0

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> tuple[str, int] | None:
        """(value, modification index) or None."""
        with self.lock:
            return self._data.get(key)

    def list_prefix(self, prefix: str, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` (key, value, index) with ``key.startswith(prefix)``, sorted by key."""
        with self.lock:
            data = self._data
            keys = heapq.nsmallest(limit, (k for k in data if k.startswith(prefix)))
            return [(k, data[k][0], data[k][1]) for k in keys]

    def __len__(self) -> int:
        return len(self._data)

    def lookup_session(self, client_id: str, seq: int) -> Result | None:
        """The recorded result of (client_id, seq) if already applied; raise if too old."""
        with self.lock:
            return self._lookup(client_id, seq)

    def _lookup(self, client_id: str, seq: int) -> Result | None:
        results = self._sessions.get(client_id)
        if results is None:
            return None
        found = results.get(seq)
        if found is not None:
            return found
        if len(results) >= self.window and seq < next(iter(results)):
            raise RequestIdConflict(
                f"X-Request-Id {client_id}:{seq} is older than the last {self.window} requests "
                "of this client and can no longer be deduplicated"
            )
        return None

    # ------------------------------------------------------------------ writes (driver)
    def apply_noop(self, index: int, term: int) -> None:
        self._advance(index, term)

    def apply(self, index: int, term: int, data: bytes) -> Result:
        """Apply one committed command entry (caller holds ``lock``)."""
        self._advance(index, term)
        try:
            cmd = decode_command(data)
        except CommandDecodeError:
            return Result(outcome=Outcome.INVALID, key="", value=None, index=index, term=term)
        if cmd.client_id is not None and cmd.seq is not None:
            try:
                recorded = self._lookup(cmd.client_id, cmd.seq)
            except RequestIdConflict:
                return Result(
                    outcome=Outcome.STALE_REQUEST, key=cmd.key, value=None, index=index, term=term
                )
            if recorded is not None:
                self._sessions.move_to_end(cmd.client_id)
                return recorded
            result = self._execute(cmd, index, term)
            self._record(cmd.client_id, cmd.seq, result)
            return result
        return self._execute(cmd, index, term)

    def _advance(self, index: int, term: int) -> None:
        if index <= self.applied_index:
            raise ValueError(f"apply out of order: index {index} after {self.applied_index}")
        self.applied_index = index
        self.applied_term = term

    def _execute(self, cmd: Command, index: int, term: int) -> Result:
        current = self._data.get(cmd.key)
        if cmd.prev_value is not None and (current is None or current[0] != cmd.prev_value):
            return Result(
                outcome=Outcome.CAS_FAILED,
                key=cmd.key,
                value=None if current is None else current[0],
                index=0 if current is None else current[1],
                term=term,
            )
        if cmd.op is Op.PUT:
            assert cmd.value is not None  # guaranteed by decode_command
            self._data[cmd.key] = (cmd.value, index)
            return Result(outcome=Outcome.OK, key=cmd.key, value=cmd.value, index=index, term=term)
        if current is None:
            return Result(
                outcome=Outcome.NOT_FOUND, key=cmd.key, value=None, index=index, term=term
            )
        del self._data[cmd.key]
        return Result(outcome=Outcome.OK, key=cmd.key, value=None, index=index, term=term)

    def _record(self, client_id: str, seq: int, result: Result) -> None:
        results = self._sessions.get(client_id)
        if results is None:
            results = self._sessions[client_id] = OrderedDict()
            while len(self._sessions) > self.max_clients:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(client_id)
        results[seq] = result
        # keep the window ordered by seq so the oldest is first
        if len(results) > 1 and seq < next(reversed(results.keys()), seq):
            items = sorted(results.items())
            results.clear()
            results.update(items)
        while len(results) > self.window:
            results.popitem(last=False)

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> bytes:
        """Encode the whole state (caller holds ``lock`` or is the only writer)."""
        with self.lock:
            obj: dict[str, Any] = {
                "v": 1,
                "applied_index": self.applied_index,
                "applied_term": self.applied_term,
                "data": [[k, v, i] for k, (v, i) in self._data.items()],
                "sessions": [
                    [client, [[seq, r.to_json()] for seq, r in results.items()]]
                    for client, results in self._sessions.items()
                ],
            }
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a snapshot; raise ``SnapshotDecodeError`` if malformed."""
        try:
            obj = json.loads(blob) if blob else {"v": 1, "data": [], "sessions": []}
            if not isinstance(obj, dict) or obj.get("v") != 1:
                raise SnapshotDecodeError("snapshot must be a JSON object with v=1")
            data = {str(k): (str(v), int(i)) for k, v, i in obj["data"]}
            sessions: OrderedDict[str, OrderedDict[int, Result]] = OrderedDict()
            for client, results in obj["sessions"]:
                sessions[str(client)] = OrderedDict(
                    (int(seq), Result.from_json(r)) for seq, r in results
                )
            applied_index = int(obj.get("applied_index", 0))
            applied_term = int(obj.get("applied_term", 0))
        except (ValueError, TypeError, KeyError, RecursionError) as err:
            if isinstance(err, SnapshotDecodeError):
                raise
            raise SnapshotDecodeError(f"snapshot does not decode: {err}") from None
        with self.lock:
            self._data = data
            self._sessions = sessions
            self.applied_index = applied_index
            self.applied_term = applied_term

    def reset_applied(self, index: int, term: int) -> None:
        """Set the applied position (after restoring a snapshot whose meta is authoritative)."""
        with self.lock:
            self.applied_index = index
            self.applied_term = term
