"""recorder.py — concurrent random clients that record every operation for the checker.

Contract: ``Recorder.run(duration)`` starts ``clients`` threads; each does random GET / PUT /
DELETE / CAS over ``keys`` keys (PUT and CAS write values unique to the run) until the duration is
over, ONE attempt per operation (no retry: a retry would blur the interval the checker needs), and
records it as a ``linearizability.Operation`` with its invocation and completion time
(``time.monotonic``). How an answer is classified:

- ok: 200; 404 on GET (absent) or DELETE (nothing to delete); 412 on CAS (rejected, with the
  current value the node reported);
- failed (certainly no effect): 503 ``no_leader`` / ``not_leader`` / ``overloaded`` /
  ``shutting_down`` (refused before a proposal was made; a relaying follower says ``no_leader``
  only when nothing reached the leader, and 504 otherwise), 503 ``proposal_lost`` (the entry was
  overwritten by another leader's, or proposing was refused during a transfer), 4xx, no connection
  could be made (``NodeUnreachable.sent`` is False: nothing was sent).
  The node promises these had no effect: classifying them as failed is what lets the checker
  catch a node that breaks that promise (the value of a "failed" write read later is a
  violation);
- unknown outcome: HTTP 504 (``outcome_unknown`` / commit timeout), other 5xx (a proposal that was
  lost or dropped by a shutting-down node may still commit), a timeout or a connection lost after
  the request may have gone out (the transport never re-sends a write whose bytes went out).

Writes carry a unique ``X-Request-Id`` (so even a retry below this layer is applied at most once).
GETs are linearizable reads (ReadIndex on the leader; followers forward). Each client talks to
the leader it learned from ``X-Raft-Leader`` and moves to another replica when one does not answer.
The HTTP layer is ``raftctl.client.Transport`` (one per thread). Every answer's leader and term
are kept as ``Observation``s (the report marks leader and term changes).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from raftctl.client import NodeUnreachable, Reply, Transport, normalize_url
from raftctl.linearizability import Kind, Operation, Status

__all__ = ["Observation", "Recorder", "classify", "ended_at", "ops_json"]

# 503 codes by which a node says the write certainly did not happen (raftkv/server: refused before
# anything was proposed, or its entry was overwritten; a relay that lost the answer says 504).
DEFINITE_503 = frozenset(
    {"no_leader", "not_leader", "overloaded", "shutting_down", "proposal_lost"}
)
_MIX = ((Kind.GET, 40), (Kind.PUT, 30), (Kind.CAS, 20), (Kind.DELETE, 10))


@dataclass(frozen=True)
class Observation:
    """What one answer said about the cluster."""

    t: float
    leader: str | None
    term: int | None


@dataclass
class _Outcome:
    status: Status
    result: str | None = None
    applied: bool = True
    detail: str = ""


def _code(reply: Reply) -> str:
    body = reply.body
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _value(reply: Reply) -> str | None:
    body = reply.body
    value = body.get("value") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def classify(
    kind: Kind, reply: Reply | None, unreachable: NodeUnreachable | None = None
) -> _Outcome:
    """ok / failed / unknown for one answer (see the module docstring). Without a reply, the
    transport says whether the request may have gone out (``NodeUnreachable.sent``: False only
    when no connection was ever made, e.g. refused)."""
    if reply is None:
        assert unreachable is not None
        if not unreachable.sent:
            return _Outcome(Status.FAILED, detail=f"not sent ({unreachable.why})")
        return _Outcome(Status.UNKNOWN, detail=f"no answer ({unreachable.why})")
    status, code = reply.status, _code(reply)
    if status == 200:
        if kind is Kind.GET:
            return _Outcome(Status.OK, result=_value(reply), detail="200")
        return _Outcome(Status.OK, detail="200")
    if status == 404 and kind in (Kind.GET, Kind.DELETE):
        return _Outcome(Status.OK, result=None, applied=False, detail="404 absent")
    if status == 412 and kind is Kind.CAS:
        return _Outcome(Status.OK, result=_value(reply), applied=False, detail="412 rejected")
    text = f"{status} {code or reply.error}"
    if status == 503 and code in DEFINITE_503:
        return _Outcome(Status.FAILED, detail=text)
    if 400 <= status < 500:
        return _Outcome(Status.FAILED, detail=text)
    return _Outcome(Status.UNKNOWN, detail=text)


@dataclass
class Recorder:
    """Runs the clients and keeps the history (thread-safe appends)."""

    urls: Sequence[str]
    clients: int = 8
    keys: int = 5
    prefix: str = "verify"
    token: str | None = None
    op_timeout: float = 2.0
    seed: int | None = None
    ids: Mapping[str, str] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.urls = [normalize_url(u) for u in self.urls]
        self.run_id = uuid.uuid4().hex[:6]
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._stop = threading.Event()
        self._rng = random.Random(self.seed)
        self.key_names = [f"{self.prefix}/k{i}" for i in range(self.keys)]

    # -- one operation --------------------------------------------------------------------
    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _record(self, op: Operation, reply: Reply | None) -> None:
        with self._lock:
            self.operations.append(op)
            if reply is not None and op.complete is not None and (reply.leader or reply.term):
                self.observations.append(Observation(op.complete, reply.leader, reply.term))

    def perform(
        self,
        client: int,
        transport: Transport,
        url: str,
        kind: Kind,
        key: str,
        *,
        value: str | None = None,
        prev: str | None = None,
    ) -> tuple[Operation, Reply | None]:
        """One attempt of one operation against ``url``; recorded, and returned."""
        path = "/v1/kv/" + quote(key, safe="")
        method, body = "GET", None
        if kind is Kind.PUT or kind is Kind.CAS:
            method, body = "PUT", (value or "").encode()
            if kind is Kind.CAS:
                path += "?" + urlencode({"prev_value": prev or ""})
        elif kind is Kind.DELETE:
            method = "DELETE"
        headers = None
        if method != "GET":  # a unique request id: a transport-level retry is applied once
            headers = {"X-Request-Id": f"verify-{self.run_id}-c{client}:{self._next_id()}"}
        invoke = time.monotonic()
        reply: Reply | None = None
        try:
            reply = transport.request(
                url, method, path, body=body, headers=headers, timeout=self.op_timeout
            )
            outcome = classify(kind, reply)
        except NodeUnreachable as err:
            outcome = classify(kind, None, err)
        done = time.monotonic()
        op = Operation(
            id=self._next_id(),
            client=client,
            kind=kind,
            key=key,
            invoke=invoke,
            complete=None if outcome.status is Status.UNKNOWN else done,
            status=outcome.status,
            value=value,
            prev=prev,
            result=outcome.result,
            applied=outcome.applied,
            detail=f"{outcome.detail} via {url}",
            gave_up=done if outcome.status is Status.UNKNOWN else None,
        )
        self._record(op, reply)
        return op, reply

    # -- the clients ----------------------------------------------------------------------
    def _client(self, client: int, rng: random.Random, stop_at: float) -> None:
        transport = Transport(timeout=self.op_timeout, token=self.token)
        known: dict[str, str | None] = {}
        seq = 0
        url = self.urls[client % len(self.urls)]
        try:
            while not self._stop.is_set() and time.monotonic() < stop_at:
                kind = rng.choices([k for k, _ in _MIX], [w for _, w in _MIX])[0]
                key = rng.choice(self.key_names)
                seq += 1
                value = f"{self.run_id}-c{client}-{seq}"
                prev = None
                if kind is Kind.CAS:
                    prev = known.get(key) or f"{self.run_id}-none"
                op, reply = self.perform(client, transport, url, kind, key, value=value, prev=prev)
                if op.status is Status.OK:
                    if kind is Kind.GET or (kind is Kind.CAS and not op.applied):
                        known[key] = op.result
                    elif kind is Kind.PUT or kind is Kind.CAS:
                        known[key] = value
                    else:
                        known[key] = None
                url = self._route(url, reply, op)
                if op.status is not Status.OK:
                    time.sleep(0.02 + rng.random() * 0.05)  # don't spin while there's no leader
        finally:
            transport.close()

    def _route(self, url: str, reply: Reply | None, op: Operation) -> str:
        leader = reply.leader if reply is not None else None
        if reply is not None and not leader and isinstance(reply.body, dict):
            hint = reply.body.get("leader")
            leader = hint if isinstance(hint, str) else None
        if leader and leader in self.ids:
            return self.ids[leader]
        if reply is None or op.status is not Status.OK:
            i = self.urls.index(url) if url in self.urls else 0
            return self.urls[(i + 1) % len(self.urls)]
        return url

    def run(self, duration: float, on_tick: Callable[[float, int], None] | None = None) -> None:
        """Run every client for ``duration`` seconds (blocks); ``on_tick(elapsed, ops)``."""
        t0 = time.monotonic()
        stop_at = t0 + duration
        threads = [
            threading.Thread(
                target=self._client,
                name=f"verify-client-{c}",
                daemon=True,
                args=(c, random.Random(self._rng.random()), stop_at),
            )
            for c in range(self.clients)
        ]
        for th in threads:
            th.start()
        try:
            while any(th.is_alive() for th in threads):
                time.sleep(0.25)
                if on_tick is not None:
                    on_tick(time.monotonic() - t0, len(self.operations))
        finally:
            self._stop.set()
            for th in threads:
                th.join(timeout=self.op_timeout + 5)

    def stop(self) -> None:
        self._stop.set()


def ended_at(op: Operation) -> float:
    """When the client stopped waiting for ``op`` (its completion, or when it gave up)."""
    if op.complete is not None:
        return op.complete
    return op.gave_up if op.gave_up is not None else op.invoke


def ops_json(ops: Sequence[Operation], origin: float) -> list[dict[str, Any]]:
    """The history as JSON, times relative to ``origin``."""
    out = []
    for op in ops:
        d = op.to_json()
        d["invoke"] = round(op.invoke - origin, 6)
        d["complete"] = None if op.complete is None else round(op.complete - origin, 6)
        out.append(d)
    return out
