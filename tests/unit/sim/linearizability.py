"""linearizability.py — is a history of register writes and reads linearizable?

Each key is an independent register (linearizability is compositional, Herlihy & Wing 1990, so
checking key by key is exact). The order of the writes is *given*: it is their order in the Raft
log (every replica applies that order; State Machine Safety is checked separately). Values are
unique, so a read names the one write it observed (or the initial "absent" value).

With the write order fixed, the history is linearizable iff there are points
``t(op)`` in each operation's [invoke, complete] interval (complete = +inf for a write whose
outcome the client never learned) such that

    t(w1) < t(w2) < ... (log order),   t(w_p) <= t(r) < t(w_{p+1}) for a read r that saw w_p.

All constraints are lower bounds coming from predecessors in that chain, plus each operation's own
upper bound; so the greedy "place every point as early as possible" finds a solution whenever one
exists. ``check_register`` runs that greedy and explains the first operation that cannot be placed.

Times are integers from one monotone clock, unique per event; ``(time, k)`` pairs give the
"just after" points the strict inequalities need.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ReadOp", "WriteOp", "check_history", "check_register"]

INF = 1 << 62


@dataclass(slots=True)
class WriteOp:
    key: str
    value: str
    invoke: int
    complete: int | None = None  # acknowledged at; None = never acknowledged (outcome unknown)
    index: int | None = None  # position in the Raft log once committed; None = never committed


@dataclass(slots=True)
class ReadOp:
    key: str
    start: int
    end: int
    value: str | None  # None = the key was absent
    node: str = ""
    read_index: int = 0
    served_at: int = 0  # applied index of the serving node
    request_id: str = ""


def check_register(key: str, writes: list[WriteOp], reads: list[ReadOp]) -> str | None:
    """None if linearizable, else a one-paragraph explanation."""
    committed = sorted((w for w in writes if w.index is not None), key=lambda w: w.index or 0)
    pos = {w.value: i + 1 for i, w in enumerate(committed)}
    by_pos: dict[int, list[ReadOp]] = defaultdict(list)
    for r in reads:
        if r.value is None:
            by_pos[0].append(r)
        elif r.value in pos:
            by_pos[pos[r.value]].append(r)
        else:
            return (
                f"key {key!r}: read [{r.start},{r.end}] on {r.node} returned {r.value!r}, "
                "which no committed write produced"
            )
    t: tuple[int, int] = (-INF, 0)
    prev_desc = "the initial state"
    for p in range(len(committed) + 1):
        if p > 0:
            w = committed[p - 1]
            lo = (w.invoke, 0)
            t = max(lo, (t[0], t[1] + 1))
            hi = w.complete if w.complete is not None else INF
            if t > (hi, 0):
                return (
                    f"key {key!r}: {prev_desc} can take effect no earlier than time {t[0]}, yet "
                    f"write {w.value!r} (invoked {w.invoke}), which the log orders after it "
                    f"(index {w.index}), was acknowledged at {w.complete}: a stale read (it "
                    "missed an acknowledged write) or writes applied out of real-time order"
                )
            prev_desc = f"write {w.value!r} (log index {w.index})"
        seg_max = t
        for r in by_pos.get(p, ()):
            tr = max(t, (r.start, 0))
            if tr > (r.end, 0):
                what = f"write {committed[p - 1].value!r}" if p else "the initial (absent) value"
                return (
                    f"key {key!r}: stale read: read [{r.start},{r.end}] on {r.node} "
                    f"(read_index={r.read_index}, served at applied={r.served_at}) returned "
                    f"{what}, but by time {t[0]} {prev_desc} and everything before it had to be "
                    "visible (a newer write was acknowledged, or an earlier read saw newer data, "
                    "before this read started)"
                )
            seg_max = max(seg_max, tr)
        if seg_max > t:
            t = seg_max
            prev_desc = (
                f"a read that returned {committed[p - 1].value!r}"
                if p
                else ("a read that saw the key absent")
            )
    return None


def check_history(writes: Iterable[WriteOp], reads: Iterable[ReadOp]) -> str | None:
    """Check every key; return the first explanation of a violation, or None."""
    wk: dict[str, list[WriteOp]] = defaultdict(list)
    rk: dict[str, list[ReadOp]] = defaultdict(list)
    for w in writes:
        wk[w.key].append(w)
    for r in reads:
        rk[r.key].append(r)
    for key in sorted(set(wk) | set(rk)):
        err = check_register(key, wk.get(key, []), rk.get(key, []))
        if err is not None:
            return err
    return None
