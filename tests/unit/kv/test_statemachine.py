"""KV state machine: apply, CAS, delete, prefix list, exactly-once table, snapshot/restore."""

from __future__ import annotations

import pytest

from raftkv.errors import RequestIdConflict, SessionExpired
from raftkv.kv import (
    Command,
    CommandDecodeError,
    KVStateMachine,
    Op,
    Outcome,
    SnapshotDecodeError,
    decode_command,
    encode_command,
)


def put(key: str, value: str, **kw: object) -> bytes:
    return encode_command(Command(op=Op.PUT, key=key, value=value, **kw))  # type: ignore[arg-type]


def delete(key: str, **kw: object) -> bytes:
    return encode_command(Command(op=Op.DELETE, key=key, **kw))  # type: ignore[arg-type]


class Machine:
    """Feeds entries with increasing indexes."""

    def __init__(self, sm: KVStateMachine | None = None) -> None:
        self.sm = sm if sm is not None else KVStateMachine()
        self.index = self.sm.applied_index

    def apply(self, data: bytes, term: int = 1):  # type: ignore[no-untyped-def]
        self.index += 1
        return self.sm.apply(self.index, term, data)


def test_command_roundtrip_and_determinism() -> None:
    cmd = Command(op=Op.PUT, key="k/ü", value="v\n", prev_value="", client_id="c1", seq=7)
    data = encode_command(cmd)
    assert decode_command(data) == cmd
    assert encode_command(cmd) == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"[]",
        b'{"v":2,"op":"put","k":"a","val":"b"}',
        b'{"v":1,"op":"x","k":"a"}',
        b'{"v":1,"op":"put","k":"","val":"b"}',
        b'{"v":1,"op":"put","k":"a"}',
        b'{"v":1,"op":"del","k":"a","val":"b"}',
        b'{"v":1,"op":"put","k":"a","val":"b","c":"x"}',
    ],
)
def test_decode_rejects_malformed(data: bytes) -> None:
    with pytest.raises(CommandDecodeError):
        decode_command(data)


def test_put_get_delete() -> None:
    m = Machine()
    r = m.apply(put("a", "1"), term=2)
    assert (r.outcome, r.key, r.value, r.index, r.term) == (Outcome.OK, "a", "1", 1, 2)
    assert m.sm.get("a") == ("1", 1)
    r = m.apply(delete("a"))
    assert r.outcome is Outcome.OK and r.value is None
    assert m.sm.get("a") is None
    r = m.apply(delete("a"))
    assert r.outcome is Outcome.NOT_FOUND
    assert m.sm.applied_index == 3


def test_compare_and_set() -> None:
    m = Machine()
    r = m.apply(put("a", "new", prev_value="x"))
    assert r.outcome is Outcome.CAS_FAILED and r.value is None and r.index == 0
    m.apply(put("a", "1"))
    r = m.apply(put("a", "2", prev_value="wrong"))
    assert (r.outcome, r.value, r.index) == (Outcome.CAS_FAILED, "1", 2)
    r = m.apply(put("a", "2", prev_value="1"))
    assert r.outcome is Outcome.OK and m.sm.get("a") == ("2", 4)
    r = m.apply(delete("a", prev_value="1"))
    assert r.outcome is Outcome.CAS_FAILED and m.sm.get("a") == ("2", 4)
    r = m.apply(delete("a", prev_value="2"))
    assert r.outcome is Outcome.OK and m.sm.get("a") is None


def test_empty_prev_value_is_a_real_comparison() -> None:
    m = Machine()
    m.apply(put("a", ""))
    assert m.apply(put("a", "x", prev_value="")).outcome is Outcome.OK


def test_list_prefix_sorted_and_limited() -> None:
    m = Machine()
    for k in ["b/2", "a/1", "b/1", "b/3", "c"]:
        m.apply(put(k, k.upper()))
    assert m.sm.list_prefix("b/", 10) == [("b/1", "B/1", 3), ("b/2", "B/2", 1), ("b/3", "B/3", 4)]
    assert [k for k, _, _ in m.sm.list_prefix("", 2)] == ["a/1", "b/1"]
    assert m.sm.list_prefix("zzz", 5) == []


def test_apply_out_of_order_is_refused() -> None:
    sm = KVStateMachine()
    sm.apply(5, 1, put("a", "1"))
    with pytest.raises(ValueError, match="out of order"):
        sm.apply(5, 1, put("a", "2"))


def test_exactly_once_returns_recorded_result() -> None:
    m = Machine()
    first = m.apply(put("a", "1", client_id="c", seq=1))
    m.apply(put("a", "other"))
    again = m.apply(put("a", "1", client_id="c", seq=1))
    assert again == first
    assert m.sm.get("a") == ("other", 2)  # the retry changed nothing
    assert m.sm.lookup_session("c", 1) == first
    assert m.sm.lookup_session("c", 2) is None
    assert m.sm.lookup_session("nobody", 1) is None


def test_exactly_once_records_failures_too() -> None:
    m = Machine()
    m.apply(put("a", "1"))
    failed = m.apply(put("a", "2", prev_value="0", client_id="c", seq=9))
    m.apply(put("a", "0"))
    assert m.apply(put("a", "2", prev_value="0", client_id="c", seq=9)) == failed
    assert m.sm.get("a") == ("0", 3)


def test_session_window_and_client_bound() -> None:
    m = Machine(KVStateMachine(max_clients=2, window=3))
    for seq in range(1, 5):
        m.apply(put("k", str(seq), client_id="c", seq=seq))
    with pytest.raises(RequestIdConflict):
        m.sm.lookup_session("c", 1)
    r = m.apply(put("k", "late", client_id="c", seq=1))
    assert r.outcome is Outcome.STALE_REQUEST and m.sm.get("k") == ("4", 4)
    # a third client evicts the least recently used one
    m.apply(put("x", "1", client_id="d", seq=1))
    m.apply(put("x", "2", client_id="e", seq=1))
    with pytest.raises(SessionExpired):  # evicted: its requests can no longer be checked
        m.sm.lookup_session("c", 4)
    assert m.sm.lookup_session("e", 1) is not None


def test_out_of_order_seqs_within_window() -> None:
    m = Machine(KVStateMachine(window=4))
    m.apply(put("k", "2", client_id="c", seq=2))
    m.apply(put("k", "1", client_id="c", seq=1))
    assert m.sm.lookup_session("c", 1) is not None
    assert m.sm.lookup_session("c", 2) is not None


def test_snapshot_restore_roundtrip_includes_sessions() -> None:
    m = Machine()
    m.apply(put("a", "1", client_id="c", seq=1))
    m.apply(put("b", "ü"))
    blob = m.sm.snapshot()
    other = KVStateMachine()
    other.restore(blob)
    assert other.get("a") == ("1", 1) and other.get("b") == ("ü", 2)
    assert other.applied_index == 2
    assert other.lookup_session("c", 1) == m.sm.lookup_session("c", 1)
    assert other.snapshot() == blob
    # a retried request after restore is still deduplicated
    mm = Machine(other)
    assert mm.apply(put("a", "1", client_id="c", seq=1)).index == 1


def test_restore_replaces_state_and_rejects_garbage() -> None:
    sm = KVStateMachine()
    sm.apply(1, 1, put("old", "x"))
    sm.restore(b"")
    assert sm.get("old") is None and sm.applied_index == 0
    for bad in (b"nope", b"[]", b'{"v":1}', b'{"v":1,"data":[[1]],"sessions":[]}'):
        with pytest.raises(SnapshotDecodeError):
            sm.restore(bad)


def test_undecodable_entry_is_applied_as_invalid_everywhere() -> None:
    m = Machine()
    r = m.apply(b"garbage")
    assert r.outcome is Outcome.INVALID and m.sm.applied_index == 1
