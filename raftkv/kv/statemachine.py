"""statemachine.py — the deterministic key/value state machine the Raft log drives.

Contract:
- ``apply(index, term, data)`` applies one committed ``NORMAL`` entry and returns its ``Result``;
  ``apply_noop(index, term)`` records a NOOP. Indexes must strictly increase. Applying the same
  entries in the same order gives the same state on every replica (no clock, no randomness).
- Exactly-once: a command carrying ``(client_id, seq)`` that was already applied returns the
  recorded ``Result`` and changes nothing — if it is the SAME request: each result is recorded
  with the request's ``fingerprint`` (op, key, value, condition); another request under a
  recorded id is refused (``REQUEST_ID_REUSED``; ``lookup_session`` raises ``RequestIdReused``).
  The session table is bounded: at most ``max_clients`` clients (least recently used evicted
  first) and the last ``window`` results per client. A seq older than a full window is refused
  (``STALE_REQUEST``, ``RequestIdConflict``). An evicted client leaves a watermark (the
  highest seq applied for it) in a bounded list of the last ``max_evicted`` evicted clients: a
  request of it with a seq not above the watermark may have been applied and cannot be checked,
  so it is refused (``SESSION_EXPIRED``, ``SessionExpired``, Raft thesis §6.3); a newer seq
  starts a fresh session that keeps refusing seqs up to the watermark. A client evicted longer
  ago than the last ``max_evicted`` evictions is forgotten: its late retry is applied as new.
  Eviction depends only on the applied sequence, so every replica evicts alike.
- Memory: each key's (value, modification index) is ONE bytes object (``snapfmt.pack_value``:
  8-byte index + UTF-8 value); no per-key tuple or int objects. The keys live in ``SHARDS``
  dicts (by ``hash(key)``), copied on write: ``_freeze()`` (O(SHARDS), under ``lock``) hands
  the current shard dicts to a reader and marks them frozen; the next write into a frozen shard
  first replaces it by a copy (1/SHARDS of the keys: a few ms at a million keys), so a frozen
  shard never changes and can be read without the lock.
- ``snapshot_view()`` (caller holds ``lock`` or is the only writer) freezes the shards and copies
  the (bounded) session table; ``SnapshotView.write(out)`` then streams it as format v3
  (snapfmt.py) in any thread, without the lock. ``content_hash`` and ``list_prefix`` read frozen
  shards the same way. ``snapshot()`` is the same as one
  blob (backups, tests); ``restore(blob)`` / ``restore_stream(src, length)`` replace the whole
  state from format v3, v2 or v1 (v1 results have no fingerprint and are answered to any
  request with their id).
- ``content_hash()`` returns (applied index, key count, SHA-256 over the sorted key/values) — the
  replica-agreement check (``GET /v1/admin/hash``); it holds ``lock`` only to copy the items.
- Thread-safety: the driver thread is the only writer; request threads read through ``get`` /
  ``list_prefix`` / ``lookup_session``. ``lock`` guards every access; the driver takes it once per
  batch of entries (``with sm.lock: ...``) and the apply methods do not take it themselves.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from raftkv.kv.commands import (
    Command,
    CommandDecodeError,
    Op,
    Outcome,
    Result,
    decode_command,
    fingerprint,
)
from raftkv.kv.errors import RequestIdConflict, RequestIdReused, SessionExpired
from raftkv.kv.snapfmt import iter_records, pack_value, read_meta, write_v3

__all__ = ["KVStateMachine", "SnapshotDecodeError", "SnapshotView"]


SHARDS = 64  # copy-on-write unit: a write into a frozen shard copies 1/SHARDS of the keys
_MASK = SHARDS - 1


class SnapshotDecodeError(ValueError):
    """A snapshot blob does not decode."""


_REFUSALS = {SessionExpired: Outcome.SESSION_EXPIRED, RequestIdReused: Outcome.REQUEST_ID_REUSED}


@dataclass(slots=True)
class _Session:
    """One client's recorded results, oldest seq first, and its eviction watermark (``floor``:
    seqs up to it that are not recorded may have been applied before an eviction)."""

    results: OrderedDict[int, tuple[Result, str | None]] = field(default_factory=OrderedDict)
    floor: int = 0

    def highest(self) -> int:
        return max(self.floor, next(reversed(self.results), 0))


@dataclass(frozen=True, slots=True)
class SnapshotView:
    """A point-in-time copy of the state (``KVStateMachine.snapshot_view``), written later."""

    applied_index: int
    applied_term: int
    shards: list[dict[str, bytes]]  # frozen: never written again
    sessions: list[tuple[str, int, list[tuple[int, tuple[Result, str | None]]]]]
    evicted: list[tuple[str, int]]

    def write(self, out: Any) -> int:
        """Stream the view as format v3 into ``out`` (anything with ``write(bytes)``)."""
        meta = {
            "applied_index": self.applied_index,
            "applied_term": self.applied_term,
            "keys": sum(len(d) for d in self.shards),
            "sessions": [
                [client, floor, [[seq, r.to_json(), fp] for seq, (r, fp) in results]]
                for client, floor, results in self.sessions
            ],
            "evicted": [[client, mark] for client, mark in self.evicted],
        }
        return write_v3(out, meta, itertools.chain.from_iterable(d.items() for d in self.shards))


class KVStateMachine:
    """Keys -> (value, last-modified index), plus the bounded exactly-once session table."""

    def __init__(
        self, *, max_clients: int = 10_000, window: int = 64, max_evicted: int = 100_000
    ) -> None:
        self.lock = threading.RLock()
        self.max_clients = max_clients
        self.window = window
        self.max_evicted = max_evicted
        # key -> pack_value(value, modification index), in SHARDS dicts by hash(key)
        self._shards: list[dict[str, bytes]] = [{} for _ in range(SHARDS)]
        self._frozen = [False] * SHARDS
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._evicted: OrderedDict[str, int] = OrderedDict()  # client id -> watermark seq
        self.applied_index = 0
        self.applied_term = 0

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> tuple[str, int] | None:
        """(value, modification index) or None."""
        with self.lock:
            packed = self._shards[hash(key) & _MASK].get(key)
        return None if packed is None else _unpack(packed)

    def _freeze(self) -> list[dict[str, bytes]]:
        """The current shards, frozen (caller holds ``lock``): read them without the lock."""
        self._frozen = [True] * SHARDS
        return list(self._shards)

    def _shard_for_write(self, key: str) -> dict[str, bytes]:
        i = hash(key) & _MASK
        if self._frozen[i]:  # a reader holds this dict: write into a copy
            self._shards[i] = self._shards[i].copy()
            self._frozen[i] = False
        return self._shards[i]

    def list_prefix(self, prefix: str, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` (key, value, index) with ``key.startswith(prefix)``, sorted by key.

        The lock is held only to freeze the shards: the scan does not block the driver."""
        with self.lock:
            shards = self._freeze()
        found = heapq.nsmallest(
            limit, ((k, v) for d in shards for k, v in d.items() if k.startswith(prefix))
        )
        out = []
        for k, packed in found:
            value, index = _unpack(packed)
            out.append((k, value, index))
        return out

    def __len__(self) -> int:
        return sum(len(d) for d in self._shards)

    def content_hash(self) -> tuple[int, int, str]:
        """(applied index, number of keys, hex SHA-256 of the sorted key/value pairs).

        The lock is held only to freeze the shards, so the driver is not blocked while the items
        are sorted and hashed. Each key and value is
        length-prefixed, so no two different contents hash the same input.
        """
        with self.lock:
            applied = self.applied_index
            shards = self._freeze()
        items = [item for d in shards for item in d.items()]
        items.sort()
        h = hashlib.sha256()
        for key, packed in items:
            k, v = key.encode("utf-8"), packed[8:]
            h.update(b"%d:%s%d:%s" % (len(k), k, len(v), v))
        return applied, len(items), h.hexdigest()

    def lookup_session(self, client_id: str, seq: int, fp: str | None = None) -> Result | None:
        """The recorded result of (client_id, seq) if already applied, else None. Raises
        ``RequestIdReused`` if it was recorded for a request whose fingerprint is not ``fp``,
        ``SessionExpired`` / ``RequestIdConflict`` if it can no longer be checked."""
        with self.lock:
            return self._lookup(client_id, seq, fp)

    def _lookup(self, client_id: str, seq: int, fp: str | None) -> Result | None:
        session = self._sessions.get(client_id)
        if session is None:
            mark = self._evicted.get(client_id)
            if mark is not None and seq <= mark:
                raise self._expired(client_id, seq, mark)
            return None
        results = session.results
        found = results.get(seq)
        if found is not None:
            result, recorded_fp = found
            if fp is not None and recorded_fp is not None and fp != recorded_fp:
                raise RequestIdReused(
                    f"X-Request-Id {client_id}:{seq} was already used for a different request "
                    "(op, key, value or condition differ); this one was not applied. Use a new "
                    "client id for every client incarnation"
                )
            return result
        if seq <= session.floor:
            raise self._expired(client_id, seq, session.floor)
        if len(results) >= self.window and seq < next(iter(results)):
            raise RequestIdConflict(
                f"X-Request-Id {client_id}:{seq} is older than the last {self.window} requests "
                "of this client and can no longer be deduplicated"
            )
        return None

    @staticmethod
    def _expired(client_id: str, seq: int, mark: int) -> SessionExpired:
        return SessionExpired(
            f"the session of client {client_id!r} expired (evicted from the exactly-once table); "
            f"request {seq} (<= {mark}, the last one applied before eviction) may have been "
            "applied and is refused; continue with a new seq or a new client id"
        )

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
            fp = fingerprint(cmd)
            try:
                recorded = self._lookup(cmd.client_id, cmd.seq, fp)
            except RequestIdConflict as err:
                return Result(
                    outcome=_REFUSALS.get(type(err), Outcome.STALE_REQUEST),
                    key=cmd.key,
                    value=None,
                    index=index,
                    term=term,
                )
            if recorded is not None:
                self._sessions.move_to_end(cmd.client_id)
                return recorded
            result = self._execute(cmd, index, term)
            self._record(cmd.client_id, cmd.seq, result, fp)
            return result
        return self._execute(cmd, index, term)

    def _advance(self, index: int, term: int) -> None:
        if index <= self.applied_index:
            raise ValueError(f"apply out of order: index {index} after {self.applied_index}")
        self.applied_index = index
        self.applied_term = term

    def _execute(self, cmd: Command, index: int, term: int) -> Result:
        shard = self._shards[hash(cmd.key) & _MASK]
        packed = shard.get(cmd.key)
        current = None if packed is None else _unpack(packed)
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
            self._shard_for_write(cmd.key)[cmd.key] = pack_value(cmd.value, index)
            return Result(outcome=Outcome.OK, key=cmd.key, value=cmd.value, index=index, term=term)
        if current is None:
            return Result(
                outcome=Outcome.NOT_FOUND, key=cmd.key, value=None, index=index, term=term
            )
        del self._shard_for_write(cmd.key)[cmd.key]
        return Result(outcome=Outcome.OK, key=cmd.key, value=None, index=index, term=term)

    def _record(self, client_id: str, seq: int, result: Result, fp: str) -> None:
        sessions = self._sessions
        session = sessions.get(client_id)
        if session is None:
            session = sessions[client_id] = _Session(floor=self._evicted.pop(client_id, 0))
            while len(sessions) > self.max_clients:
                gone, old = sessions.popitem(last=False)
                self._evicted[gone] = old.highest()
                while len(self._evicted) > self.max_evicted:
                    self._evicted.popitem(last=False)
        else:
            sessions.move_to_end(client_id)
        results = session.results
        results[seq] = (result, fp)
        # keep the window ordered by seq so the oldest is first
        if len(results) > 1 and seq < next(reversed(results.keys()), seq):
            items = sorted(results.items())
            results.clear()
            results.update(items)
        while len(results) > self.window:
            results.popitem(last=False)

    # ------------------------------------------------------------------ snapshots
    def snapshot_view(self) -> SnapshotView:
        """A point-in-time view to write later without the lock (caller holds ``lock`` or is
        the only writer): the frozen shards (O(SHARDS); values are immutable bytes) and a copy
        of the bounded session table."""
        with self.lock:
            return SnapshotView(
                applied_index=self.applied_index,
                applied_term=self.applied_term,
                shards=self._freeze(),
                sessions=[
                    (client, sess.floor, list(sess.results.items()))
                    for client, sess in self._sessions.items()
                ],
                evicted=list(self._evicted.items()),
            )

    def snapshot(self) -> bytes:
        """The whole state as one format-v3 blob (backups, tests; the node streams
        ``snapshot_view()`` to disk instead)."""
        view = self.snapshot_view()
        out = io.BytesIO()
        view.write(out)
        return out.getvalue()

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a snapshot blob (format v3, v2 or v1); raise
        ``SnapshotDecodeError`` if malformed."""
        self.restore_stream(io.BytesIO(blob), len(blob))

    def restore_stream(self, src: BinaryIO, length: int) -> None:
        """Replace the whole state with the ``length`` bytes of snapshot data read from ``src``
        (v3: block by block); raise ``SnapshotDecodeError`` if malformed. The new state is
        built aside and swapped in under the lock at the end."""
        try:
            obj, remaining = read_meta(src, length)
            if obj.get("v") not in (1, 2, 3):
                raise SnapshotDecodeError("snapshot must be a JSON object with v=1, 2 or 3")
            shards: list[dict[str, bytes]] = [{} for _ in range(SHARDS)]
            if obj["v"] == 3:
                for batch in iter_records(src, remaining):
                    for k, packed in batch:
                        shards[hash(k) & _MASK][k] = packed
                count = sum(len(d) for d in shards)
                if count != int(obj["keys"]):
                    raise SnapshotDecodeError(
                        f"snapshot holds {count} keys, its meta says {obj['keys']}"
                    )
            else:
                for k, v, i in obj["data"]:
                    shards[hash(str(k)) & _MASK][str(k)] = pack_value(str(v), int(i))
            sessions: OrderedDict[str, _Session] = OrderedDict()
            if obj["v"] == 1:
                for client, results in obj["sessions"]:
                    sessions[str(client)] = _Session(
                        OrderedDict((int(seq), (Result.from_json(r), None)) for seq, r in results)
                    )
            else:
                for client, floor, results in obj["sessions"]:
                    sessions[str(client)] = _Session(
                        OrderedDict(
                            (int(seq), (Result.from_json(r), None if fp is None else str(fp)))
                            for seq, r, fp in results
                        ),
                        int(floor),
                    )
            evicted = OrderedDict(
                (str(client), int(mark)) for client, mark in obj.get("evicted", [])
            )
            applied_index = int(obj.get("applied_index", 0))
            applied_term = int(obj.get("applied_term", 0))
        except (ValueError, TypeError, KeyError, OSError, RecursionError) as err:
            if isinstance(err, SnapshotDecodeError):
                raise
            raise SnapshotDecodeError(f"snapshot does not decode: {err}") from None
        with self.lock:
            self._shards = shards
            self._frozen = [False] * SHARDS
            self._sessions = sessions
            self._evicted = evicted
            self.applied_index = applied_index
            self.applied_term = applied_term

    def reset_applied(self, index: int, term: int) -> None:
        """Set the applied position (after restoring a snapshot whose meta is authoritative)."""
        with self.lock:
            self.applied_index = index
            self.applied_term = term


def _unpack(packed: bytes) -> tuple[str, int]:
    return packed[8:].decode("utf-8"), int.from_bytes(packed[:8], "little")
