"""The driver tells the truth about pending writes: a snapshot installed over them, a shutdown
or a storage failure never turns a write that may be applied into a definite failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raftkv.config import load_config
from raftkv.errors import (
    NodeFailed,
    OutcomeUnknown,
    ProposalLost,
    RaftkvError,
    RequestIdReused,
    ShuttingDown,
)
from raftkv.kv import Command, KVStateMachine, Op, Outcome, Result, encode_command
from raftkv.raft import Ready
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.driver import NodeDriver
from raftkv.server.waiters import Waiter
from raftkv.storage import Storage
from tests.unit.server.test_driver import wait_leader


def make(tmp_path: Path, sm: KVStateMachine | None = None) -> NodeDriver:
    cfg = load_config(
        {"id": "solo", "data_dir": str(tmp_path / "d"), "election_ms": "100", "heartbeat_ms": "10"},
        {},
        "solo",
    )
    return NodeDriver(cfg, sm=sm)


def put(key: str, value: str, **kw: Any) -> Command:
    return Command(op=Op.PUT, key=key, value=value, **kw)


class _Core:
    def advance(self, rd: Ready) -> None:
        pass


class _Transport:
    def send(self, msgs: Any) -> None:
        pass


def outcome(w: Waiter[Result]) -> Result | BaseException:
    assert w.wait(0), "waiter not answered"
    if w.error is not None:
        return w.error
    assert w.value is not None
    return w.value


def test_snapshot_over_pending_writes_answers_from_the_exactly_once_table(
    tmp_path: Path,
) -> None:
    # what the leader applied, then sent as a snapshot covering indexes 1..8
    leader = KVStateMachine(max_clients=3)
    ours = put("a", "1", client_id="c", seq=1)
    applied = [
        put("e", "1", client_id="ev", seq=1),
        put("f", "1", client_id="f1", seq=1),
        put("g", "1", client_id="g1", seq=1),
        put("h", "1", client_id="h1", seq=1),  # evicts "ev"
        put("r", "first", client_id="re", seq=1),
        ours,  # index 6
        put("b", "x", client_id="other", seq=1),
        put("n", "no-id"),
    ]
    for index, cmd in enumerate(applied, start=1):
        leader.apply(index, 2, encode_command(cmd))
    snap = Snapshot(meta=SnapshotMeta(index=8, term=2, members=("solo",)), data=leader.snapshot())

    d = make(tmp_path, KVStateMachine(max_clients=3))
    storage = Storage.open(str(tmp_path / "d"))
    d._storage, d._transport = storage, _Transport()  # type: ignore[assignment]
    cases = {
        6: ours,  # applied: the recorded result
        7: put("b", "mine", client_id="c", seq=2),  # index 7 holds another write: lost
        5: put("r", "second", client_id="re", seq=1),  # id reused by another request
        8: put("n", "no-id"),  # no X-Request-Id: cannot tell
        1: put("e", "1", client_id="ev", seq=1),  # session evicted since: cannot tell
        9: put("later", "1", client_id="c", seq=3),  # beyond the snapshot: still pending
    }
    waiters: dict[int, Waiter[Result]] = {}
    for index, cmd in cases.items():
        waiters[index] = Waiter()
        d._proposals.add(index, 1, waiters[index], cmd)
    try:
        d._handle_ready(_Core(), Ready(snapshot=snap))  # type: ignore[arg-type]
        d._wake_waiters()
    finally:
        storage.close()
    got = {i: outcome(w) for i, w in waiters.items() if i != 9}
    assert isinstance(got[6], Result) and got[6].outcome is Outcome.OK and got[6].index == 6
    assert isinstance(got[7], ProposalLost) and "another write" in str(got[7])
    assert isinstance(got[5], RequestIdReused)
    assert isinstance(got[8], OutcomeUnknown) and "unknown" in str(got[8])
    assert isinstance(got[1], OutcomeUnknown) and "expired" in str(got[1])
    assert d._proposals.indexes() == [9] and not waiters[9].done
    assert all(isinstance(e, RaftkvError) for e in got.values() if not isinstance(e, Result))


def test_stop_answers_proposed_writes_unknown_and_queued_ones_definite(tmp_path: Path) -> None:
    d = make(tmp_path)
    d.start()
    try:
        wait_leader(d)
        assert d.propose(put("a", "1"), timeout=10).outcome is Outcome.OK
        # a write whose entry is in the log but not committed (it never will be here)
        proposed: Waiter[Result] = Waiter()
        d._proposals.add(10**9, d.status().term, proposed, put("x", "1"))
    finally:
        d.stop(2)
    err = outcome(proposed)
    assert isinstance(err, OutcomeUnknown) and err.status == 504
    assert "may still be committed" in str(err)
    with pytest.raises(ShuttingDown):  # refused before proposing: definite
        d.propose(put("b", "1"), timeout=1)


def test_storage_failure_answers_the_write_it_was_saving_unknown(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    cfg = make(tmp_path).config
    d = NodeDriver(cfg, on_fatal=failures.append)
    d.start()
    try:
        wait_leader(d)
        assert d._storage is not None

        def broken(*args: Any) -> None:
            raise OSError(5, "Input/output error")

        d._storage.save = broken  # type: ignore[method-assign]
        with pytest.raises(OutcomeUnknown, match="may still be committed"):
            d.propose(put("a", "1"), timeout=10)
        assert failures and isinstance(failures[0], OSError)
        with pytest.raises(NodeFailed):  # a new write is refused before proposing: definite
            d.propose(put("b", "1"), timeout=1)
    finally:
        d.stop(2)
