"""Exactly-once table: request fingerprints (request_id_reused), evicted sessions
(session_expired), and the snapshot format that carries both (v3; v2 and v1 still read)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from raftkv.errors import RequestIdConflict, RequestIdReused, SessionExpired
from raftkv.kv import Command, KVStateMachine, Op, Outcome, encode_command, fingerprint
from raftkv.kv.snapfmt import read_meta


def put(key: str, value: str, **kw: object) -> bytes:
    return encode_command(Command(op=Op.PUT, key=key, value=value, **kw))  # type: ignore[arg-type]


class Machine:
    def __init__(self, sm: KVStateMachine | None = None) -> None:
        self.sm = sm if sm is not None else KVStateMachine()
        self.index = self.sm.applied_index

    def apply(self, data: bytes):  # type: ignore[no-untyped-def]
        self.index += 1
        return self.sm.apply(self.index, 1, data)


def test_fingerprint_tells_op_key_value_and_condition_apart() -> None:
    base = Command(op=Op.PUT, key="k", value="v", client_id="c", seq=1)
    variants = [
        Command(op=Op.PUT, key="k", value="w"),
        Command(op=Op.PUT, key="k2", value="v"),
        Command(op=Op.PUT, key="k", value="v", prev_value=""),
        Command(op=Op.PUT, key="k", value="v", prev_value="x"),
        Command(op=Op.DELETE, key="k"),
    ]
    fps = {fingerprint(base)} | {fingerprint(v) for v in variants}
    assert len(fps) == len(variants) + 1
    # the session itself is not part of the request's identity
    assert fingerprint(base) == fingerprint(Command(op=Op.PUT, key="k", value="v"))


def test_reused_request_id_with_another_body_is_refused_not_answered() -> None:
    """The bug seen on a real cluster: a restarted client reusing its id got 200 for a write
    that was never applied (the recorded answer of an older, different request)."""
    m = Machine()
    first = m.apply(put("k4", "old", client_id="c", seq=1))
    assert first.outcome is Outcome.OK
    r = m.apply(put("k4", "new", client_id="c", seq=1))
    assert r.outcome is Outcome.REQUEST_ID_REUSED
    assert m.sm.get("k4") == ("old", 1)  # not applied
    with pytest.raises(RequestIdReused, match="different request"):
        m.sm.lookup_session("c", 1, fingerprint(Command(op=Op.PUT, key="k4", value="new")))
    # the same request is still answered from the table
    assert m.apply(put("k4", "old", client_id="c", seq=1)) == first
    assert (
        m.sm.lookup_session("c", 1, fingerprint(Command(op=Op.PUT, key="k4", value="old"))) == first
    )
    # a CAS retry with another condition is another request too
    m.apply(put("a", "1", prev_value="", client_id="c", seq=2))
    assert m.apply(put("a", "1", prev_value="0", client_id="c", seq=2)).outcome is (
        Outcome.REQUEST_ID_REUSED
    )


def test_evicted_session_refuses_retries_and_accepts_newer_requests() -> None:
    m = Machine(KVStateMachine(max_clients=2, window=8))
    for seq in (1, 2, 3):
        m.apply(put("c", str(seq), client_id="c", seq=seq))
    m.apply(put("d", "1", client_id="d", seq=1))
    m.apply(put("e", "1", client_id="e", seq=1))  # evicts c (least recently used)
    before = m.sm.get("c")
    # a retry of an applied request (or of any seq up to 3) is refused, not applied again
    for seq in (3, 2, 1):
        r = m.apply(put("c", "again", client_id="c", seq=seq))
        assert r.outcome is Outcome.SESSION_EXPIRED
        with pytest.raises(SessionExpired, match="expired"):
            m.sm.lookup_session("c", seq)
    assert m.sm.get("c") == before
    # a newer request starts a fresh session, which still refuses the old seqs
    r = m.apply(put("c", "4", client_id="c", seq=4))
    assert r.outcome is Outcome.OK and m.sm.get("c") == ("4", r.index)
    assert m.apply(put("c", "4", client_id="c", seq=4)) == r
    assert m.apply(put("c", "x", client_id="c", seq=2)).outcome is Outcome.SESSION_EXPIRED
    # a never-seen client is a new session, not an expired one
    assert m.apply(put("f", "1", client_id="f", seq=5)).outcome is Outcome.OK


def test_eviction_list_is_bounded_and_forgets_the_oldest() -> None:
    m = Machine(KVStateMachine(max_clients=1, window=4, max_evicted=2))
    for client in ("a", "b", "c", "d"):  # each evicts the previous one
        m.apply(put("k", client, client_id=client, seq=1))
    # b and c are remembered as evicted; a fell out of the bounded list (documented window)
    with pytest.raises(SessionExpired):
        m.sm.lookup_session("b", 1)
    with pytest.raises(SessionExpired):
        m.sm.lookup_session("c", 1)
    assert m.sm.lookup_session("a", 1) is None


def test_two_replicas_decide_identically_and_snapshots_carry_the_table() -> None:
    cmds = [put("k", str(n), client_id=f"c{n % 5}", seq=n // 5 + 1) for n in range(40)]
    cmds += [put("k", "retry", client_id="c0", seq=1), put("k", "z", client_id="c4", seq=8)]
    a = Machine(KVStateMachine(max_clients=3, window=2, max_evicted=3))
    b = Machine(KVStateMachine(max_clients=3, window=2, max_evicted=3))
    for i, data in enumerate(cmds):
        ra, rb = a.apply(data), b.apply(data)
        assert ra == rb
        if i == 20:  # b restarts from a snapshot half-way
            restored = KVStateMachine(max_clients=3, window=2, max_evicted=3)
            restored.restore(b.sm.snapshot())
            assert restored.snapshot() == b.sm.snapshot()
            b.sm = restored
    assert a.sm.snapshot() == b.sm.snapshot()
    obj = snapshot_meta(a.sm.snapshot())
    assert obj["v"] == 3 and obj["evicted"] and all(len(s) == 3 for s in obj["sessions"])


def test_v1_snapshots_are_still_read() -> None:
    v1 = {
        "v": 1,
        "applied_index": 3,
        "applied_term": 2,
        "data": [["k", "v", 3]],
        "sessions": [["c", [[1, ["ok", "k", "v", 3, 2]]]]],
    }
    sm = KVStateMachine()
    sm.restore(json.dumps(v1).encode())
    assert sm.get("k") == ("v", 3) and sm.applied_index == 3
    recorded = sm.lookup_session("c", 1, "any-fingerprint")  # no fingerprint: answered as before
    assert recorded is not None and recorded.index == 3
    assert snapshot_meta(sm.snapshot())["v"] == 3


def test_v2_snapshots_are_still_read() -> None:
    v2 = {
        "v": 2,
        "applied_index": 4,
        "applied_term": 2,
        "data": [["k", "v", 3], ["k2", "w\u00e9", 4]],
        "sessions": [["c", 0, [[1, ["ok", "k", "v", 3, 2], "fp1"]]]],
        "evicted": [["gone", 7]],
    }
    sm = KVStateMachine()
    sm.restore(json.dumps(v2).encode())
    assert sm.get("k") == ("v", 3) and sm.get("k2") == ("w\u00e9", 4) and len(sm) == 2
    with pytest.raises(RequestIdReused):
        sm.lookup_session("c", 1, "other-fp")
    with pytest.raises(SessionExpired):
        sm.lookup_session("gone", 7)
    again = KVStateMachine()
    again.restore(sm.snapshot())  # rewritten as v3, same state
    assert again.snapshot() == sm.snapshot() and again.get("k2") == ("w\u00e9", 4)


def snapshot_meta(blob: bytes) -> dict[str, Any]:
    return read_meta(io.BytesIO(blob), len(blob))[0]


def test_stale_seq_in_a_full_window_stays_request_id_conflict() -> None:
    m = Machine(KVStateMachine(window=2))
    for seq in (1, 2, 3):
        m.apply(put("k", str(seq), client_id="c", seq=seq))
    with pytest.raises(RequestIdConflict) as info:
        m.sm.lookup_session("c", 1)
    assert info.value.code == "request_id_conflict"
    assert m.apply(put("k", "1", client_id="c", seq=1)).outcome is Outcome.STALE_REQUEST
