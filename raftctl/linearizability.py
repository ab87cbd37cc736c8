"""linearizability.py — is a recorded history of key/value operations linearizable?

Black-box: it knows only what clients saw (invocation time, completion time, result), nothing of
the Raft log. Contract:

- An ``Operation`` is one client call on one key: GET, PUT, DELETE or CAS (compare-and-set), with
  its invocation and completion times (one monotonic clock) and ``status``:
  ``ok`` (the answer is known: for a GET the value read, for DELETE/CAS whether it applied, for a
  rejected CAS the current value the node reported), ``failed`` (it certainly had no effect: it was
  refused before it reached a leader) or ``unknown`` (timeout, connection lost after sending, HTTP
  504: it may take effect at any point after its invocation, or never).
- ``check(ops)`` checks each key on its own (linearizability is compositional — Herlihy & Wing
  1990 — so the history is linearizable iff every key's sub-history is; "P-compositionality" in
  Porcupine's terms) with the Wing-Gong search as improved by Lowe and Porcupine: walk the events in
  time order, tentatively linearize any pending call whose effect the register model accepts,
  backtrack when an operation's completion is reached before it could be linearized, and memoize
  (set of linearized operations, register value) so no configuration is explored twice.
  ``failed`` operations and ``unknown`` GETs carry no information and are left out; ``unknown``
  writes get a completion time of +infinity and need not be linearized at all (= never happened).
- A violation is reported in words: the operation the longest consistent ordering could not
  place, what the key held at that point and who wrote it, and the operations around it.
- The search is exponential in the worst case; ``max_steps`` bounds it and a key that exceeds it is
  reported as *inconclusive* (never as linearizable).

The simulator keeps its own white-box checker (tests/unit/sim/linearizability.py): it knows the Raft
log's write order, which makes its check stronger and linear-time; this one is for clusters whose
log the client cannot see (docs/verify.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CheckResult",
    "KeyVerdict",
    "Kind",
    "Operation",
    "Status",
    "check",
    "check_key",
    "describe",
    "step",
]

DEFAULT_MAX_STEPS = 2_000_000


class Kind(StrEnum):
    GET = "get"
    PUT = "put"
    DELETE = "delete"
    CAS = "cas"


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One client operation on one key, as the client saw it."""

    id: int
    client: int
    kind: Kind
    key: str
    invoke: float
    complete: float | None  # None: the client never learned the outcome
    status: Status
    value: str | None = None  # PUT / CAS: the value written
    prev: str | None = None  # CAS: the value expected
    result: str | None = None  # GET: the value read; rejected CAS: the current value (None=absent)
    applied: bool = True  # DELETE: False = the key was absent (404); CAS: False = rejected (412)
    detail: str = ""  # what the client got (for reports)
    gave_up: float | None = None  # unknown outcome: when the client stopped waiting (reports)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "client": self.client, "kind": self.kind.value, "key": self.key,
            "invoke": self.invoke, "complete": self.complete, "status": self.status.value,
            "value": self.value, "prev": self.prev, "result": self.result,
            "applied": self.applied, "detail": self.detail, "gave_up": self.gave_up,
        }  # fmt: skip


def step(state: str | None, op: Operation) -> tuple[bool, str | None]:
    """The register model: is ``op``'s answer possible when the key holds ``state``
    (None = absent), and what does the key hold after it?"""
    unknown = op.status is Status.UNKNOWN
    if op.kind is Kind.GET:
        return state == op.result, state
    if op.kind is Kind.PUT:
        return True, op.value
    if op.kind is Kind.DELETE:
        if unknown:
            return True, None
        return (state is not None) == op.applied, None
    # CAS
    matches = state is not None and state == op.prev
    if unknown:
        return True, op.value if matches else state
    if op.applied:
        return matches, op.value if matches else state
    return (not matches and state == op.result), state


def _q(value: str | None) -> str:
    return "absent" if value is None else repr(value)


def _t(t: float | None, origin: float) -> str:
    return "∞" if t is None or math.isinf(t) else f"{t - origin:.3f}s"


def describe(op: Operation, origin: float = 0.0) -> str:
    """One line in words: ``client 3 GET 'k' -> 'v12' [1.204s..1.210s, ok]``."""
    if op.kind is Kind.GET:
        what = f"GET {op.key!r}" + (f" -> {_q(op.result)}" if op.status is Status.OK else "")
    elif op.kind is Kind.PUT:
        what = f"PUT {op.key!r} = {op.value!r}"
    elif op.kind is Kind.DELETE:
        what = f"DELETE {op.key!r}"
        if op.status is Status.OK:
            what += " (deleted)" if op.applied else " (was absent)"
    else:
        what = f"CAS {op.key!r} {op.prev!r} -> {op.value!r}"
        if op.status is Status.OK:
            what += " (applied)" if op.applied else f" (rejected, current {_q(op.result)})"
    status = op.status.value if op.status is not Status.UNKNOWN else "unknown outcome"
    return (f"op {op.id} client {op.client} {what} "
            f"[{_t(op.invoke, origin)}..{_t(op.complete, origin)}, {status}]")


@dataclass(frozen=True)
class KeyVerdict:
    """The outcome for one key."""

    key: str
    linearizable: bool | None  # None = inconclusive (search budget exhausted)
    operations: int
    steps: int
    explanation: str = ""
    around: tuple[Operation, ...] = ()
    culprit: Operation | None = None

    def to_json(self, origin: float = 0.0) -> dict[str, Any]:
        return {
            "key": self.key,
            "linearizable": self.linearizable,
            "operations": self.operations,
            "steps": self.steps,
            "explanation": self.explanation,
            "culprit": None if self.culprit is None else describe(self.culprit, origin),
            "around": [describe(op, origin) for op in self.around],
        }


@dataclass
class CheckResult:
    """The outcome for the whole history (one ``KeyVerdict`` per key)."""

    keys: list[KeyVerdict] = field(default_factory=list)

    @property
    def linearizable(self) -> bool:
        return all(k.linearizable is True for k in self.keys)

    @property
    def violations(self) -> list[KeyVerdict]:
        return [k for k in self.keys if k.linearizable is False]

    @property
    def inconclusive(self) -> list[KeyVerdict]:
        return [k for k in self.keys if k.linearizable is None]

    @property
    def first_violation(self) -> KeyVerdict | None:
        bad = self.violations
        if not bad:
            return None
        return min(bad, key=lambda k: k.culprit.invoke if k.culprit else math.inf)


def check(
    ops: Iterable[Operation], *, max_steps: int = DEFAULT_MAX_STEPS, origin: float = 0.0,
    initial: Mapping[str, str | None] | None = None,
) -> CheckResult:
    """Check every key's sub-history (keys in sorted order); ``initial``: each key's value before
    the history began (default: absent)."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    start = initial or {}
    return CheckResult([check_key(key, by_key[key], max_steps=max_steps, origin=origin,
                                  initial=start.get(key)) for key in sorted(by_key)])


def _relevant(ops: Iterable[Operation]) -> list[Operation]:
    """Drop what carries no information: failed operations and GETs of unknown outcome."""
    return [
        op for op in ops
        if op.status is Status.OK or (op.status is Status.UNKNOWN and op.kind is not Kind.GET)
    ]


def check_key(
    key: str,
    ops: Sequence[Operation],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    origin: float = 0.0,
    initial: str | None = None,
) -> KeyVerdict:
    """Wing-Gong/Lowe/Porcupine search over one key's operations (see the module docstring)."""
    hist = _relevant(o for o in ops if o.key == key)
    n = len(hist)
    if n == 0:
        return KeyVerdict(key, True, 0, 0)
    # Events: (time, 0=call / 1=return, op). Calls sort before returns at equal times, so two
    # operations that merely touch are treated as concurrent (the lenient choice).
    events: list[tuple[float, int, int]] = []
    for i, op in enumerate(hist):
        end = math.inf if op.status is Status.UNKNOWN or op.complete is None else op.complete
        events.append((op.invoke, 0, i))
        events.append((end, 1, i))
    events.sort()
    # A doubly linked list over the events; node 2n is the head sentinel, -1 the end.
    head = 2 * n
    nxt = [*range(1, 2 * n + 1), 0]
    nxt[2 * n - 1] = -1
    prv = [-1] * (2 * n + 1)
    for j in range(2 * n):
        prv[j] = head if j == 0 else j - 1
    nxt[head] = 0 if n else -1
    is_call = [ev[1] == 0 for ev in events]
    op_of = [ev[2] for ev in events]
    match = [0] * (2 * n)  # call node -> its return node
    call_node: dict[int, int] = {}
    for j, (_, kind, i) in enumerate(events):
        if kind == 0:
            call_node[i] = j
        else:
            match[call_node[i]] = j
    required = sum(1 for op in hist if op.status is Status.OK)

    def lift(j: int) -> None:
        r = match[j]
        nxt[prv[j]] = nxt[j]
        if nxt[j] != -1:
            prv[nxt[j]] = prv[j]
        nxt[prv[r]] = nxt[r]
        if nxt[r] != -1:
            prv[nxt[r]] = prv[r]

    def unlift(j: int) -> None:
        r = match[j]
        if nxt[r] != -1:
            prv[nxt[r]] = r
        nxt[prv[r]] = r
        if nxt[j] != -1:
            prv[nxt[j]] = j
        nxt[prv[j]] = j

    state = initial
    linearized = 0
    done_required = 0
    cache: set[tuple[int, str | None]] = set()
    stack: list[tuple[int, str | None]] = []
    best: tuple[float, int, str | None, list[int]] | None = None  # (time, op, state, order)
    steps = 0
    entry = nxt[head]
    while done_required < required:
        steps += 1
        if steps > max_steps:
            return KeyVerdict(
                key, None, n, steps,
                f"key {key!r}: inconclusive — the search gave up after {max_steps} steps "
                f"({n} operations, {n - required} of unknown outcome); run a shorter or less "
                "concurrent workload",
            )
        if entry == -1:  # cannot happen: the last event is a return; kept as a guard
            break
        i = op_of[entry]
        if is_call[entry]:
            ok, new_state = step(state, hist[i])
            if ok:
                bits = linearized | (1 << i)
                config = (bits, new_state)
                if config not in cache:
                    cache.add(config)
                    stack.append((entry, state))
                    state, linearized = new_state, bits
                    if hist[i].status is Status.OK:
                        done_required += 1
                    lift(entry)
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
            continue
        # A completion was reached before its operation could be linearized: backtrack.
        t = events[entry][0]
        if best is None or t > best[0] or (t == best[0] and len(stack) > len(best[3])):
            best = (t, i, state, [op_of[j] for j, _ in stack])
        if not stack:
            break
        top, state = stack.pop()
        linearized &= ~(1 << op_of[top])
        if hist[op_of[top]].status is Status.OK:
            done_required -= 1
        unlift(top)
        entry = nxt[top]
    if done_required >= required:
        return KeyVerdict(key, True, n, steps)
    assert best is not None
    return _explain(key, hist, best, steps, origin, initial)


def _changes(op: Operation) -> bool:
    """Did ``op`` certainly change the key (acknowledged PUT, applied CAS or DELETE)?"""
    return op.status is Status.OK and (op.kind is Kind.PUT or (
        op.kind in (Kind.CAS, Kind.DELETE) and op.applied))


def _anomaly(c: Operation, hist: list[Operation], origin: float,
             initial: str | None) -> str | None:
    """A real-time fact that shows what is wrong with an operation that observed a value (a GET,
    or a CAS rejected with the current value), or None when no simple fact applies."""
    if not (c.kind is Kind.GET or (c.kind is Kind.CAS and not c.applied)):
        return None
    seen = c.result
    verb = "it read" if c.kind is Kind.GET else "it reported the current value"
    c_end = math.inf if c.complete is None else c.complete
    writes = [op for op in hist if op.kind in (Kind.PUT, Kind.CAS) and op.value is not None
              and (op.status is Status.UNKNOWN or op.kind is Kind.PUT or op.applied)]
    if seen is not None:
        src = next((w for w in writes if w.value == seen), None)
        if src is None:
            if seen == initial:
                return None
            return f"{verb} {seen!r}, a value no operation ever wrote"
        if src.invoke > c_end:
            return (f"{verb} {seen!r} before the write of that value began "
                    f"({describe(src, origin)}): a read from the future")
        if src.complete is not None:
            done = src.complete
            newer = [w for w in hist if w is not src and _changes(w) and w.invoke > done
                     and w.complete is not None and w.complete < c.invoke]
            if newer:
                w2 = max(newer, key=lambda w: w.complete or 0.0)
                return (f"a stale read: {verb} {seen!r}, written by {describe(src, origin)}, but "
                        f"{describe(w2, origin)} replaced it after that write was acknowledged "
                        "and before this operation began")
        return None
    deleters = [d for d in hist if d.kind is Kind.DELETE
                and (d.status is Status.UNKNOWN or d.applied)]
    acked = sorted((w for w in writes if _changes(w) and w.complete is not None
                    and w.complete < c.invoke), key=lambda w: w.complete or 0.0, reverse=True)
    for w in acked:
        # a delete can explain the absence only if it may take effect after w and before c
        if not any(d.invoke < c_end and (d.complete is None or d.complete > w.invoke)
                   for d in deleters):
            return (f"a lost write: {verb} that the key was absent, but {describe(w, origin)} "
                    "was acknowledged before this operation began and no delete could have "
                    "removed it since")
    return None


def _explain(
    key: str,
    hist: list[Operation],
    best: tuple[float, int, str | None, list[int]],
    steps: int,
    origin: float,
    initial: str | None,
) -> KeyVerdict:
    _, culprit_i, state, order = best
    culprit = hist[culprit_i]
    writers = {op.value: op for op in hist if op.kind in (Kind.PUT, Kind.CAS) and op.value}
    if state is None:
        held = "the key was absent" + (" (initial state)" if not order else "")
    else:
        w = writers.get(state)
        held = f"the key held {state!r}" + (
            f", written by {describe(w, origin)}" if w else " (its value before the run)")
    if culprit.kind is Kind.GET:
        why = f"it read {_q(culprit.result)}"
    elif culprit.kind is Kind.DELETE:
        why = "it found the key absent" if not culprit.applied else "it deleted an existing key"
    elif culprit.kind is Kind.CAS:
        why = (f"it compared against {culprit.prev!r} and succeeded" if culprit.applied
               else f"it was rejected reporting current {_q(culprit.result)}")
    else:
        why = "it could not be placed in any order"
    last = [describe(hist[i], origin) for i in order[-3:]]
    # Around it: the operations overlapping it, and the last three that completed before it began.
    c_end = math.inf if culprit.complete is None else culprit.complete
    overlapping = [
        op for op in hist
        if op is not culprit and op.invoke <= c_end
        and (op.complete is None or op.complete >= culprit.invoke)
    ]
    before = sorted(
        (op for op in hist if op.complete is not None and op.complete < culprit.invoke),
        key=lambda op: op.complete or 0.0,
    )[-3:]
    around = tuple(sorted({*before, *overlapping[:12], culprit}, key=lambda op: op.invoke))
    text = (f"key {key!r} is not linearizable: {describe(culprit, origin)} cannot take effect "
            "anywhere within its interval")
    fact = _anomaly(culprit, hist, origin, initial)
    text += f" — {fact}." if fact else "."
    text += (f" The longest consistent ordering the search found covers {len(order)} of "
             f"{len(hist)} operations; at its end {held}, and {why}")
    text += (", ending with: " + "; ".join(last) + ".") if last else "."
    return KeyVerdict(key, False, len(hist), steps, text, around, culprit)
