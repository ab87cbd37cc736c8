"""NodeDriver in-process on a one-member cluster: real core + real storage, no HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.config import load_config
from raftkv.errors import MalformedRaftMessage, ShuttingDown
from raftkv.kv import Command, Op, Outcome
from raftkv.server.driver import NodeDriver
from raftkv.server.transport import decode_batch
from tests.support.waiting import wait_until


def make(tmp_path: Path, **flags: str) -> NodeDriver:
    cfg = load_config(
        {
            "id": "solo",
            "data_dir": str(tmp_path / "d"),
            "election_ms": "100",
            "heartbeat_ms": "10",
            **flags,
        },
        {},
        "solo",
    )
    return NodeDriver(cfg)


def wait_leader(d: NodeDriver, timeout: float = 20) -> None:
    wait_until(
        lambda: d.status().role == "leader",
        timeout,
        "a leader",
        lambda: f"no leader: {d.status()}",
        interval=0.01,
    )


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[NodeDriver]:
    d = make(tmp_path, snapshot_every="5")
    d.start()
    try:
        wait_leader(d)
        yield d
    finally:
        d.stop(2)


def put(key: str, value: str, **kw: object) -> Command:
    return Command(op=Op.PUT, key=key, value=value, **kw)  # type: ignore[arg-type]


def test_propose_read_and_status(driver: NodeDriver) -> None:
    r = driver.propose(put("a", "1"), timeout=10)
    assert r.outcome is Outcome.OK and r.index >= 2 and r.term >= 1  # index 1 is the leader's NOOP
    assert driver.sm.get("a") == ("1", r.index)
    assert driver.read_barrier(timeout=10) >= r.index
    st = driver.status()
    assert st.role == "leader" and st.leader == "solo" and st.last_applied >= r.index
    assert st.members == ("solo",)


def test_many_concurrent_proposals_are_group_committed(driver: NodeDriver) -> None:
    import threading

    results = []

    def worker(n: int) -> None:
        results.append(driver.propose(put(f"k{n}", str(n)), timeout=20))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.key for r in results) == sorted(f"k{n}" for n in range(40))
    assert len({r.index for r in results}) == 40
    # compaction ran (snapshot_every=5); status() is refreshed at the end of a driver pass
    wait_until(lambda: driver.status().snapshot_index > 0, 10, "snapshot taken")


def test_snapshot_now_and_restart_recovers_everything(tmp_path: Path) -> None:
    d = make(tmp_path)
    d.start()
    try:
        wait_leader(d)
        for n in range(10):
            d.propose(put(f"k{n}", str(n), client_id="c", seq=n), timeout=10)
        snap = d.snapshot_now(timeout=10)
        assert snap >= 10
        d.propose(put("after", "snap"), timeout=10)
    finally:
        d.stop(2)
    d2 = make(tmp_path)
    d2.start()
    try:
        wait_leader(d2)
        d2.read_barrier(timeout=10)
        assert d2.sm.get("k9") == ("9", d2.sm.get("k9")[1])  # type: ignore[index]
        assert d2.sm.get("after") is not None
        assert d2.sm.lookup_session("c", 3) is not None
        wait_until(lambda: d2.status().snapshot_index == snap, 10, "status shows the snapshot")
    finally:
        d2.stop(2)


def test_shutdown_refuses_new_writes(driver: NodeDriver) -> None:
    driver.begin_shutdown()
    assert driver.draining
    with pytest.raises(ShuttingDown):
        driver.propose(put("a", "1"), timeout=5)


def test_bad_raft_messages_are_rejected(driver: NodeDriver) -> None:
    with pytest.raises(MalformedRaftMessage, match="message 0"):
        decode_batch([{"v": 1, "type": "nope"}], driver.config.id)
    with pytest.raises(MalformedRaftMessage):
        decode_batch(["x"], driver.config.id)
