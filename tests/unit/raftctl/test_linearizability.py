"""The black-box linearizability checker: planted violations, unknown outcomes, and agreement with
a brute-force search over every ordering on small random histories."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from raftctl.linearizability import Kind, Operation, Status, check, check_key, describe, step

_ids = itertools.count(1)


def op(
    kind: Kind,
    start: float,
    end: float | None,
    *,
    status: Status = Status.OK,
    value: str | None = None,
    prev: str | None = None,
    result: str | None = None,
    applied: bool = True,
    key: str = "k",
    client: int = 0,
) -> Operation:
    return Operation(
        id=next(_ids),
        client=client,
        kind=kind,
        key=key,
        invoke=start,
        complete=end,
        status=status,
        value=value,
        prev=prev,
        result=result,
        applied=applied,
    )


def put(v: str, s: float, e: float | None, **kw: object) -> Operation:
    return op(Kind.PUT, s, e, value=v, **kw)  # type: ignore[arg-type]


def get(v: str | None, s: float, e: float, **kw: object) -> Operation:
    return op(Kind.GET, s, e, result=v, **kw)  # type: ignore[arg-type]


def brute_force(ops: list[Operation], initial: str | None = None) -> bool:
    """Every subset of the unknown writes, every ordering respecting real time: any legal one?"""
    ops = [
        o
        for o in ops
        if o.status is Status.OK or (o.status is Status.UNKNOWN and o.kind is not Kind.GET)
    ]
    known = [o for o in ops if o.status is Status.OK]
    unknown = [o for o in ops if o.status is Status.UNKNOWN]

    def end(o: Operation) -> float:
        return math.inf if o.status is Status.UNKNOWN or o.complete is None else o.complete

    for r in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, r):
            subset = known + list(chosen)
            for perm in itertools.permutations(subset):
                # real-time order: if a completed before b was invoked, a comes first
                if any(
                    end(perm[j]) < perm[i].invoke
                    for i in range(len(perm))
                    for j in range(i + 1, len(perm))
                ):
                    continue
                state, legal = initial, True
                for o in perm:
                    legal, state = step(state, o)
                    if not legal:
                        break
                if legal:
                    return True
    return False


# ------------------------------------------------------------------ planted violations
def test_sequential_history_passes() -> None:
    ops = [get(None, 0, 1), put("a", 2, 3), get("a", 4, 5), put("b", 6, 7), get("b", 8, 9)]
    assert check(ops).linearizable


def test_stale_read_is_reported_in_words() -> None:
    ops = [put("a", 0, 1), put("b", 2, 3, client=1), get("a", 4, 5, client=2)]
    res = check(ops)
    assert not res.linearizable
    v = res.first_violation
    assert v is not None and v.culprit is ops[2]
    assert "GET 'k' -> 'a'" in v.explanation
    assert "the key held 'b', written by" in v.explanation
    assert "a stale read: it read 'a', written by op" in v.explanation
    assert "replaced it after that write was acknowledged" in v.explanation
    assert ops[1] in v.around


def test_lost_write_is_reported() -> None:
    ops = [put("a", 0, 1), get(None, 2, 3)]
    v = check(ops).first_violation
    assert v is not None and "a lost write: it read that the key was absent" in v.explanation


def test_duplicated_write_is_reported() -> None:
    # 'a' is written once, overwritten by 'b', then seen again: it was applied twice.
    ops = [put("a", 0, 1), put("b", 2, 3), get("b", 4, 5), get("a", 6, 7)]
    v = check(ops).first_violation
    assert v is not None and v.culprit is ops[3] and "a stale read: it read 'a'" in v.explanation


def test_read_of_a_value_nobody_wrote() -> None:
    v = check([put("a", 0, 1), get("zzz", 2, 3)]).first_violation
    assert v is not None and "a value no operation ever wrote" in v.explanation


def test_concurrent_write_may_or_may_not_be_seen() -> None:
    ops = [put("a", 0, 1), put("b", 2, 10), get("a", 3, 4), get("b", 5, 6)]
    assert check(ops).linearizable
    # ... but once seen, it cannot be unseen
    ops2 = [*ops, get("a", 7, 8)]
    assert not check(ops2).linearizable


def test_unknown_write_may_take_effect_late_or_never() -> None:
    never = [put("a", 0, 1), put("x", 2, None, status=Status.UNKNOWN), get("a", 5, 6)]
    assert check(never).linearizable
    late = [
        put("a", 0, 1),
        put("x", 2, None, status=Status.UNKNOWN),
        get("a", 5, 6),
        get("x", 100, 101),
    ]
    assert check(late).linearizable
    # ... but not before its invocation
    early = [put("a", 0, 1), get("x", 2, 3), put("x", 4, None, status=Status.UNKNOWN)]
    v = check(early).first_violation
    assert v is not None and "a read from the future" in v.explanation


def test_failed_operations_never_take_effect() -> None:
    ops = [put("a", 0, 1), put("x", 2, 3, status=Status.FAILED), get("x", 4, 5)]
    assert not check(ops).linearizable


def test_cas_and_delete_semantics() -> None:
    ok = [
        put("a", 0, 1),
        op(Kind.CAS, 2, 3, prev="a", value="b"),
        op(Kind.CAS, 4, 5, prev="a", value="c", applied=False, result="b"),
        op(Kind.DELETE, 6, 7),
        op(Kind.DELETE, 8, 9, applied=False),
        get(None, 10, 11),
    ]
    assert check(ok).linearizable
    # a CAS that wins against a value that was already overwritten
    bad = [put("a", 0, 1), put("b", 2, 3), op(Kind.CAS, 4, 5, prev="a", value="c")]
    v = check(bad).first_violation
    assert v is not None and "compared against 'a' and succeeded" in v.explanation


def test_keys_are_checked_independently() -> None:
    ops = [
        put("a", 0, 1, key="x"),
        put("b", 0, 1, key="y"),
        get("a", 2, 3, key="x"),
        get("a", 2, 3, key="y"),
    ]
    res = check(ops)
    assert [k.key for k in res.violations] == ["y"]
    assert [k.linearizable for k in res.keys] == [True, False]


def test_search_budget_gives_inconclusive_not_a_pass() -> None:
    ops = [put(f"v{i}", 0, 100) for i in range(12)] + [get("nope", 101, 102)]
    v = check_key("k", ops, max_steps=50)
    assert v.linearizable is None and "inconclusive" in v.explanation


def test_describe_is_one_line_in_words() -> None:
    o = op(Kind.CAS, 1.5, 2.0, prev="a", value="b", applied=False, result=None, client=3)
    assert describe(o, origin=1.0) == (
        f"op {o.id} client 3 CAS 'k' 'a' -> 'b' (rejected, current absent) [0.500s..1.000s, ok]"
    )


# ------------------------------------------------------------------ against brute force
def _random_history(
    rng: random.Random, n: int, *, unknown: int = 2, deletes: float = 0.0
) -> list[Operation]:
    """A history produced by a register with random linearization points, then (sometimes)
    one answer corrupted, so about half are linearizable."""
    values = iter(f"v{i}" for i in range(1000))
    state: str | None = None
    ops: list[Operation] = []
    spans = []
    for _ in range(n):
        s = rng.uniform(0, 10)
        spans.append((s, s + rng.uniform(0.1, 4)))
    points = sorted((rng.uniform(s, e), s, e) for s, e in spans)
    for _, s, e in points:
        kind = Kind.DELETE if rng.random() < deletes else rng.choice(list(Kind))
        status = rng.choices([Status.OK, Status.UNKNOWN, Status.FAILED], [8, unknown, 1])[0]
        if status is Status.FAILED:
            ops.append(op(kind, s, e, status=status, value=next(values), prev=state))
            continue
        if status is Status.UNKNOWN and rng.random() < 0.5:  # took no effect
            ops.append(op(kind, s, None, status=status, value=next(values), prev=state))
            continue
        if kind is Kind.GET:
            ops.append(get(state, s, e, status=status))
        elif kind is Kind.PUT:
            v = next(values)
            ops.append(put(v, s, e if status is Status.OK else None, status=status))
            state = v
        elif kind is Kind.DELETE:
            ops.append(
                op(
                    kind,
                    s,
                    e if status is Status.OK else None,
                    status=status,
                    applied=state is not None,
                )
            )
            state = None
        else:
            prev = state if rng.random() < 0.6 else rng.choice([None, "v0", "v1"])
            v = next(values)
            won = prev is not None and prev == state
            ops.append(
                op(
                    kind,
                    s,
                    e if status is Status.OK else None,
                    status=status,
                    prev=prev,
                    value=v,
                    applied=won,
                    result=None if won else state,
                )
            )
            if won:
                state = v
    if rng.random() < 0.6:
        i = rng.randrange(len(ops))
        o = ops[i]
        if o.kind is Kind.GET:
            written = [w.value for w in ops if w.kind in (Kind.PUT, Kind.CAS)]
            ops[i] = get(
                rng.choice([None, "v-none", *written]), o.invoke, o.complete or 0, status=o.status
            )
        elif o.kind is Kind.DELETE:
            ops[i] = op(Kind.DELETE, o.invoke, o.complete, status=o.status, applied=not o.applied)
    return ops


@pytest.mark.parametrize("seed", range(600))
def test_agrees_with_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    if seed < 400:
        ops = _random_history(rng, rng.randint(1, 7))
    else:  # many unknown outcomes and deletes: exercises the search's reductions
        ops = _random_history(rng, rng.randint(2, 8), unknown=8, deletes=0.3)
    expected = brute_force(ops)
    got = check(ops)
    assert got.linearizable is expected, (seed, [describe(o) for o in ops])
    if not expected:
        assert got.first_violation is not None and got.first_violation.explanation


def test_initial_values() -> None:
    ops = [get("old", 0, 1), put("a", 2, 3), get("a", 4, 5)]
    assert check(ops, initial={"k": "old"}).linearizable
    v = check(ops).first_violation  # from an absent key, 'old' came from nowhere
    assert v is not None and "a value no operation ever wrote" in v.explanation


def test_lost_write_fact_ignores_deletes_that_came_later() -> None:
    ops = [put("a", 0, 1), get(None, 2, 3), op(Kind.DELETE, 10, 11)]
    v = check(ops).first_violation
    assert v is not None and "a lost write" in v.explanation
    # ... but a delete that may have taken effect in between explains the absence
    ops = [put("a", 0, 1), op(Kind.DELETE, 0.5, None, status=Status.UNKNOWN), get(None, 2, 3)]
    assert check(ops).linearizable


def test_a_long_contended_history_with_many_unknown_outcomes_is_conclusive() -> None:
    """8 clients on one key, 3000 operations, 8 % of unknown outcome (half of them took effect):
    the contention of a `verify --chaos --clients 16 --keys 2` run. The search must finish within
    its budget (it used to drown in interchangeable unknown DELETEs)."""
    rng = random.Random(42)
    free = [0.0] * 8
    spans = []
    for _ in range(3000):
        c = rng.randrange(8)
        start = free[c] + rng.uniform(0, 0.002)
        end = start + rng.uniform(0.001, 0.03)
        free[c] = end
        spans.append((rng.uniform(start, end), start, end, c))
    state: str | None = None
    ops: list[Operation] = []
    for n, (_, s, e, c) in enumerate(sorted(spans)):
        kind = rng.choices(list(Kind), [40, 30, 10, 20])[0]
        unknown = rng.random() < 0.08
        took_effect = not unknown or rng.random() < 0.5
        v = f"v{n}"
        if kind is Kind.GET:
            if not unknown:
                ops.append(get(state, s, e, client=c))
            continue
        end = None if unknown else e
        st = Status.UNKNOWN if unknown else Status.OK
        if kind is Kind.PUT:
            ops.append(put(v, s, end, status=st, client=c))
            state = v if took_effect else state
        elif kind is Kind.DELETE:
            ops.append(op(Kind.DELETE, s, end, status=st, applied=state is not None, client=c))
            state = None if took_effect else state
        else:
            prev = state if rng.random() < 0.5 else "nope"
            won = prev is not None and prev == state
            ops.append(
                op(
                    Kind.CAS,
                    s,
                    end,
                    status=st,
                    prev=prev,
                    value=v,
                    applied=won,
                    result=None if won else state,
                    client=c,
                )
            )
            state = v if won and took_effect else state
    verdict = check_key("k", ops)
    assert verdict.linearizable is True, verdict.explanation
