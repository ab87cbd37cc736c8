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
    return (
        f"op {op.id} client {op.client} {what} "
        f"[{_t(op.invoke, origin)}..{_t(op.complete, origin)}, {status}]"
    )


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
    ops: Iterable[Operation],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    origin: float = 0.0,
    initial: Mapping[str, str | None] | None = None,
) -> CheckResult:
    """Check every key's sub-history (keys in sorted order); ``initial``: each key's value before
    the history began (default: absent)."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    start = initial or {}
    return CheckResult(
        [
            check_key(key, by_key[key], max_steps=max_steps, origin=origin, initial=start.get(key))
            for key in sorted(by_key)
        ]
    )


def _relevant(ops: Iterable[Operation]) -> list[Operation]:
    """Drop what carries no information: failed operations and GETs of unknown outcome."""
    return [
        op
        for op in ops
        if op.status is Status.OK or (op.status is Status.UNKNOWN and op.kind is not Kind.GET)
    ]


def _observed(hist: Sequence[Operation]) -> set[str]:
    """Values some operation depends on: read by a GET, reported by a rejected CAS, or expected
    by any CAS."""
    seen: set[str] = set()
    for op in hist:
        if (
            op.status is Status.OK
            and op.result is not None
            and (op.kind is Kind.GET or (op.kind is Kind.CAS and not op.applied))
        ):
            seen.add(op.result)
        if op.kind is Kind.CAS and op.prev is not None:
            seen.add(op.prev)
    return seen


def _pruned(hist: list[Operation]) -> list[Operation]:
    """Without the writes of unknown outcome whose value no operation depends on. A linearization
    of this is one of the full history (such a write may never have taken effect), so a pass here
    is a pass; a failure is re-checked on the full history."""
    seen = _observed(hist)
    return [
        op
        for op in hist
        if not (
            op.status is Status.UNKNOWN and op.kind in (Kind.PUT, Kind.CAS) and op.value not in seen
        )
    ]


def check_key(
    key: str,
    ops: Sequence[Operation],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    origin: float = 0.0,
    initial: str | None = None,
) -> KeyVerdict:
    """Wing-Gong/Lowe/Porcupine search over one key's operations (see the module docstring):
    first without the unknown-outcome writes nobody observed (fast, and enough for a correct
    history), then, only if that fails, over everything."""
    hist = _relevant(o for o in ops if o.key == key)
    if not hist:
        return KeyVerdict(key, True, 0, 0)
    pruned = _pruned(hist)
    steps = 0
    if len(pruned) < len(hist):
        ok, _, steps = _search(pruned, initial, max_steps)
        if ok:
            return KeyVerdict(key, True, len(hist), steps)
    ok, best, more = _search(hist, initial, max_steps)
    steps += more
    required = sum(1 for op in hist if op.status is Status.OK)
    if ok is None:
        return KeyVerdict(
            key,
            None,
            len(hist),
            steps,
            f"key {key!r}: inconclusive — the search gave up after {max_steps} steps "
            f"({len(hist)} operations, {len(hist) - required} of unknown outcome); use more "
            "--keys or fewer --clients, or a shorter --duration",
        )
    if ok:
        return KeyVerdict(key, True, len(hist), steps)
    assert best is not None
    return _explain(key, hist, best, steps, origin, initial)


_Best = tuple[float, int, "str | None", list[int]]  # (time, blocked op, state, order so far)


def _search(
    hist: list[Operation], initial: str | None, max_steps: int
) -> tuple[bool | None, _Best | None, int]:
    """(linearizable? None = gave up, where the search got furthest, steps).

    Depth-first over the calls that may be linearized next (those before the first completion of
    a not yet linearized operation, in Lowe's linked list of events), known operations first in
    time order, then unknown-outcome ones: an unknown operation is only placed when the known
    ones cannot proceed without it. (set of linearized operations, value) is memoized."""
    if not any(op.status is Status.OK for op in hist):
        return True, None, 0  # nothing must be placed: unknown operations may never happen
    n = len(hist)
    # Events: (time, 0=call / 1=return, op). Calls sort before returns at equal times, so two
    # operations that merely touch are treated as concurrent (the lenient choice). Unknown
    # operations never return (+inf): they never block the search.
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
    prv = [head, *range(2 * n - 1), -1]
    nxt[head] = 0
    is_call = [ev[1] == 0 for ev in events]
    op_of = [ev[2] for ev in events]
    known = [op.status is Status.OK for op in hist]
    ends = [
        math.inf if op.complete is None or not known[i] else op.complete
        for i, op in enumerate(hist)
    ]
    match = [0] * (2 * n)  # call node -> its return node
    call_node: dict[int, int] = {}
    for j, (_, kind, i) in enumerate(events):
        if kind == 0:
            call_node[i] = j
        else:
            match[call_node[i]] = j
    required = sum(known)

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

    def candidates(state: str | None) -> tuple[list[int], int]:
        """The calls to try next, and the first return node after them (the operation that must
        be placed before the search may move past it).

        Two reductions keep the search narrow; neither loses a linearization. A known operation
        that is possible now and leaves the value unchanged (a read of it, a CAS rejected against
        it, a DELETE of an absent key) is placed at once and alone: moving such an operation to
        the earliest point it may take effect never invalidates anything placed after it. An
        unknown-outcome operation that would change nothing now (a CAS whose expected value is
        not there, a DELETE of an absent key) is not tried here: placing it now is the same as
        never; and of the pending unknown DELETEs, which all do the same and have no deadline,
        only the first is tried. The remaining ones are tried in an order that finds a
        linearization quickly when there is one (the order never changes the verdict): first a
        write whose value a waiting operation needs, then known before unknown operations, then
        the earliest completion."""
        changers: list[tuple[int, int, float, int]] = []
        demanded: set[str | None] = set()
        unknown_delete_seen = False
        e = nxt[head]
        while e != -1 and is_call[e]:
            i = op_of[e]
            op = hist[i]
            ok, new = step(state, op)
            if known[i]:
                if ok and new == state:
                    forced = e
                    while e != -1 and is_call[e]:
                        e = nxt[e]
                    return [forced], e
                if ok:
                    changers.append((0, 0, ends[i], e))
                elif op.kind is Kind.GET or (op.kind is Kind.CAS and not op.applied):
                    demanded.add(op.result)
                elif op.kind is Kind.CAS:
                    demanded.add(op.prev)
            elif new != state and not (op.kind is Kind.DELETE and unknown_delete_seen):
                # pending unknown DELETEs are interchangeable (same effect, no deadline): try one
                unknown_delete_seen = unknown_delete_seen or op.kind is Kind.DELETE
                changers.append((0, 1, op.invoke, e))
            e = nxt[e]
        # a write whose value a waiting operation needs first, then known before unknown,
        # then the one whose completion comes soonest
        ranked = sorted(
            (0 if step(state, hist[op_of[c]])[1] in demanded else 1, unk, t, c)
            for _, unk, t, c in changers
        )
        return [c for *_, c in ranked], e

    state = initial
    linearized = 0
    done = 0
    cache: set[tuple[int, str | None]] = set()
    # frames: [candidates, next index, blocking return node, the call node lifted to get here,
    # the state before it]
    frames: list[list[Any]] = [[*candidates(state), -1, None]]
    frames[0].insert(1, 0)
    best: _Best | None = None
    steps = 0
    while True:
        steps += 1
        if steps > max_steps:
            return None, best, steps
        frame = frames[-1]
        cands, idx, blocking = frame[0], frame[1], frame[2]
        if idx < len(cands):
            frame[1] = idx + 1
            e = cands[idx]
            i = op_of[e]
            ok, new_state = step(state, hist[i])
            if not ok:
                continue
            bits = linearized | (1 << i)
            if (bits, new_state) in cache:
                continue
            cache.add((bits, new_state))
            lift(e)
            frames.append([*candidates(new_state), e, state])
            frames[-1].insert(1, 0)
            state, linearized = new_state, bits
            done += known[i]
            if done == required:
                return True, None, steps
            continue
        # Every candidate failed here: the blocking operation cannot be placed. Backtrack.
        if blocking != -1:
            t = events[blocking][0]
            if best is None or t > best[0] or (t == best[0] and len(frames) > len(best[3]) + 1):
                best = (t, op_of[blocking], state, [op_of[f[3]] for f in frames[1:]])
        frames.pop()
        if not frames:
            return False, best, steps
        lifted, before = frame[3], frame[4]
        unlift(lifted)
        linearized &= ~(1 << op_of[lifted])
        done -= known[op_of[lifted]]
        state = before


def _changes(op: Operation) -> bool:
    """Did ``op`` certainly change the key (acknowledged PUT, applied CAS or DELETE)?"""
    return op.status is Status.OK and (
        op.kind is Kind.PUT or (op.kind in (Kind.CAS, Kind.DELETE) and op.applied)
    )


def _anomaly(c: Operation, hist: list[Operation], origin: float, initial: str | None) -> str | None:
    """A real-time fact that shows what is wrong with an operation that observed a value (a GET,
    or a CAS rejected with the current value), or None when no simple fact applies."""
    if not (c.kind is Kind.GET or (c.kind is Kind.CAS and not c.applied)):
        return None
    seen = c.result
    verb = "it read" if c.kind is Kind.GET else "it reported the current value"
    c_end = math.inf if c.complete is None else c.complete
    writes = [
        op
        for op in hist
        if op.kind in (Kind.PUT, Kind.CAS)
        and op.value is not None
        and (op.status is Status.UNKNOWN or op.kind is Kind.PUT or op.applied)
    ]
    if seen is not None:
        src = next((w for w in writes if w.value == seen), None)
        if src is None:
            if seen == initial:
                return None
            return f"{verb} {seen!r}, a value no operation ever wrote"
        if src.invoke > c_end:
            return (
                f"{verb} {seen!r} before the write of that value began "
                f"({describe(src, origin)}): a read from the future"
            )
        if src.complete is not None:
            done = src.complete
            newer = [
                w
                for w in hist
                if w is not src
                and _changes(w)
                and w.invoke > done
                and w.complete is not None
                and w.complete < c.invoke
            ]
            if newer:
                w2 = max(newer, key=lambda w: w.complete or 0.0)
                return (
                    f"a stale read: {verb} {seen!r}, written by {describe(src, origin)}, but "
                    f"{describe(w2, origin)} replaced it after that write was acknowledged "
                    "and before this operation began"
                )
        return None
    deleters = [
        d for d in hist if d.kind is Kind.DELETE and (d.status is Status.UNKNOWN or d.applied)
    ]
    acked = sorted(
        (w for w in writes if _changes(w) and w.complete is not None and w.complete < c.invoke),
        key=lambda w: w.complete or 0.0,
        reverse=True,
    )
    for w in acked:
        # a delete can explain the absence only if it may take effect after w and before c
        if not any(
            d.invoke < c_end and (d.complete is None or d.complete > w.invoke) for d in deleters
        ):
            return (
                f"a lost write: {verb} that the key was absent, but {describe(w, origin)} "
                "was acknowledged before this operation began and no delete could have "
                "removed it since"
            )
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
            f", written by {describe(w, origin)}" if w else " (its value before the run)"
        )
    if culprit.kind is Kind.GET:
        why = f"it read {_q(culprit.result)}"
    elif culprit.kind is Kind.DELETE:
        why = "it found the key absent" if not culprit.applied else "it deleted an existing key"
    elif culprit.kind is Kind.CAS:
        why = (
            f"it compared against {culprit.prev!r} and succeeded"
            if culprit.applied
            else f"it was rejected reporting current {_q(culprit.result)}"
        )
    else:
        why = "it could not be placed in any order"
    last = [describe(hist[i], origin) for i in order[-3:]]
    # Around it: the operations overlapping it, and the last three that completed before it began.
    c_end = math.inf if culprit.complete is None else culprit.complete
    overlapping = [
        op
        for op in hist
        if op is not culprit
        and op.invoke <= c_end
        and (op.complete is None or op.complete >= culprit.invoke)
    ]
    before = sorted(
        (op for op in hist if op.complete is not None and op.complete < culprit.invoke),
        key=lambda op: op.complete or 0.0,
    )[-3:]
    around = tuple(sorted({*before, *overlapping[:12], culprit}, key=lambda op: op.invoke))
    text = (
        f"key {key!r} is not linearizable: {describe(culprit, origin)} cannot take effect "
        "anywhere within its interval"
    )
    fact = _anomaly(culprit, hist, origin, initial)
    text += f" — {fact}." if fact else "."
    text += (
        f" The longest consistent ordering the search found covers {len(order)} of "
        f"{len(hist)} operations; at its end {held}, and {why}"
    )
    text += (", ending with: " + "; ".join(last) + ".") if last else "."
    return KeyVerdict(key, False, len(hist), steps, text, around, culprit)
