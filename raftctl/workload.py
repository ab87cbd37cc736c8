"""workload.py — the client validation workload behind ``raftctl verify``.

Contract: ``Workload.run_phase`` performs, under a unique key prefix, several writes and reads,
an overwrite of one key, a compare-and-set that must succeed and one that must be rejected, a
delete (then the key must be gone) and a prefix listing; every operation becomes one ``Check``
(op, key, index, term, leader, ok, detail) handed to ``emit`` as soon as it is done.
Values the cluster acknowledged are remembered in ``acked``; ``check_acked`` reads every one of
them back (linearizable reads) — the "no acknowledged write lost" check run after each fault.
When a request finds no replica to serve it before the client's deadline (``Unavailable``, or
``OutcomeUnknown``: a write sent but never answered), the check fails and ``WorkloadAborted``
stops the run instead of waiting that long for every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raftctl.client import KVClient, Reply
from raftctl.errors import (
    CompareFailed,
    KeyNotFound,
    NodeError,
    OutcomeUnknown,
    RaftctlError,
    Unavailable,
)

__all__ = ["Check", "Workload", "WorkloadAborted"]


class WorkloadAborted(Exception):
    """The cluster stopped answering (``Unavailable``); the remaining steps are skipped."""


@dataclass(frozen=True)
class Check:
    """One verified operation."""

    op: str
    key: str
    ok: bool
    detail: str
    index: int | None = None
    term: int | None = None
    leader: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _index(reply: Reply) -> int | None:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("index"), int):
        return int(reply.body["index"])
    return reply.index


def _term(reply: Reply) -> int | None:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("term"), int):
        return int(reply.body["term"])
    return reply.term


def _leader(reply: Reply) -> str | None:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("leader"), str):
        return str(reply.body["leader"])
    return reply.leader


class Workload:
    """Runs verification phases against one cluster and remembers what was acknowledged."""

    def __init__(self, client: KVClient, prefix: str, emit: Callable[[Check], None]) -> None:
        self.client = client
        self.prefix = prefix.rstrip("/")
        self.emit = emit
        self.checks: list[Check] = []
        self.acked: dict[str, str] = {}

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def _record(self, check: Check) -> Check:
        self.checks.append(check)
        self.emit(check)
        return check

    def _ok(self, op: str, key: str, reply: Reply, detail: str, ok: bool = True) -> Check:
        return self._record(Check(op, key, ok, detail, _index(reply), _term(reply), _leader(reply)))

    def _from_error(self, op: str, key: str, err: NodeError, detail: str) -> Check:
        """An expected refusal (404 / 412) is a passing check, with the reply's metadata."""
        if isinstance(err.reply, Reply):
            return self._ok(op, key, err.reply, detail)
        return self._record(Check(op, key, True, detail))

    def _fail(self, op: str, key: str, err: Exception) -> Check:
        check = self._record(Check(op, key, False, str(err)))
        if isinstance(err, (Unavailable, OutcomeUnknown)):
            # Nobody answered before the deadline: every further step would wait as long.
            raise WorkloadAborted(str(err)) from err
        return check

    def put(self, key: str, value: str, *, prev: str | None = None) -> bool:
        op = "CAS" if prev is not None else "PUT"
        try:
            reply = self.client.put(key, value, prev_value=prev)
        except RaftctlError as err:
            self._fail(op, key, err)
            return False
        self.acked[key] = value
        shown = f"{prev!r} -> {value!r}" if prev is not None else f"= {value!r}"
        self._ok(op, key, reply, shown)
        return True

    def expect(self, key: str, value: str | None) -> bool:
        try:
            reply = self.client.get(key)
        except KeyNotFound as err:
            if value is None:
                self._from_error("GET", key, err, "absent, as expected")
                return True
            self._fail("GET", key, err)
            return False
        except RaftctlError as err:
            self._fail("GET", key, err)
            return False
        got = reply.body.get("value") if isinstance(reply.body, dict) else None
        ok = got == value
        detail = f"-> {got!r}" + ("" if ok else f" (expected {value!r})")
        self._ok("GET", key, reply, detail, ok)
        return ok

    def run_phase(self, phase: str, writes: int = 5) -> None:
        """The assignment's client workload, under ``<prefix>/<phase>/``."""
        base = f"{self.prefix}/{phase}"
        keys = [f"{base}/key-{i}" for i in range(1, writes + 1)]
        for i, key in enumerate(keys, 1):
            self.put(key, f"value-{i}")
        for key in keys:
            self.expect(key, self.acked.get(key))
        # overwrite the same key, then read the new value back
        self.put(keys[0], "value-1-overwritten")
        self.expect(keys[0], "value-1-overwritten")
        # compare-and-set: one with the right previous value, one with a stale one
        cas_key = keys[1]
        current = self.acked.get(cas_key, "value-2")
        self.put(cas_key, "value-2-cas", prev=current)
        try:
            reply = self.client.put(cas_key, "must-not-win", prev_value=current)
            self._ok("CAS", cas_key, reply, "stale compare-and-set was accepted", ok=False)
            self.acked[cas_key] = "must-not-win"
        except CompareFailed as err:
            self._from_error(
                "CAS", cas_key, err, f"stale prev {current!r} rejected (current {err.current!r})"
            )
        except RaftctlError as err:
            self._fail("CAS", cas_key, err)
        self.expect(cas_key, self.acked.get(cas_key))
        # delete, then the key is gone
        gone = keys[-1]
        try:
            reply = self.client.delete(gone)
            self.acked.pop(gone, None)
            self._ok("DELETE", gone, reply, "deleted")
        except RaftctlError as err:
            self._fail("DELETE", gone, err)
        self.expect(gone, None)
        # list the phase's prefix
        try:
            reply, items = self.client.list_keys(prefix=base + "/")
            got = {str(it.get("key")): it.get("value") for it in items}
            want = {k: v for k, v in self.acked.items() if k.startswith(base + "/")}
            ok = got == want
            detail = f"{len(got)} keys" + ("" if ok else f" (expected {len(want)}: {want})")
            self._ok("LIST", base + "/", reply, detail, ok)
        except RaftctlError as err:
            self._fail("LIST", base + "/", err)

    def check_acked(self) -> bool:
        """Read back every acknowledged value; True if all are intact."""
        ok = True
        for key, value in sorted(self.acked.items()):
            ok &= self.expect(key, value)
        return ok
