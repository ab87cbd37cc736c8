"""ChangeFeed: order, prefix filtering, bounded window (count and bytes), compaction, blocking
reads, reset on snapshot, close; and the driver feeding it from the apply path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from raftkv.config import load_config
from raftkv.errors import Compacted
from raftkv.kv import Command, Op
from raftkv.server.changefeed import Change, ChangeFeed, FeedClosed
from raftkv.server.driver import NodeDriver
from tests.unit.server.test_driver import wait_leader


def ch(index: int, key: str, value: str | None = "v") -> Change:
    return Change(index, key, value)


def test_changes_come_in_index_order_filtered_by_prefix() -> None:
    feed = ChangeFeed(window=100)
    feed.publish([ch(2, "a/1"), ch(3, "b/1"), ch(5, "a/2", None)], 6)
    got, cursor = feed.read(0, "a/", timeout=0)
    assert [(c.index, c.op, c.key, c.value) for c in got] == [
        (2, "put", "a/1", "v"),
        (5, "delete", "a/2", None),
    ]
    assert cursor == 6  # everything scanned: the cursor follows the applied index
    assert feed.read(2, "a/", timeout=0) == ([ch(5, "a/2", None)], 6)
    assert feed.read(6, "", timeout=0) == ([], 6)
    assert got[1].to_json() == {"index": 5, "op": "delete", "key": "a/2", "value": None}
    # exact key, and a limit that leaves the cursor at the last change returned
    assert feed.read(0, "a/1", timeout=0, exact=True) == ([ch(2, "a/1")], 6)
    assert feed.read(0, "", timeout=0, limit=2) == ([ch(2, "a/1"), ch(3, "b/1")], 3)


def test_window_is_bounded_and_old_cursors_are_compacted() -> None:
    feed = ChangeFeed(window=3)
    for i in range(1, 3001):
        feed.publish([ch(i, f"k{i}")], i)
    assert feed.horizon == 2997
    assert [c.index for c in feed.read(2997, "", 0)[0]] == [2998, 2999, 3000]
    with pytest.raises(Compacted) as info:
        feed.read(2996, "", 0)
    assert info.value.status == 410 and info.value.payload()["oldest_index"] == 2998
    with pytest.raises(Compacted):
        feed.check(0)
    feed.check(2997)


def test_window_is_bounded_in_bytes_too() -> None:
    feed = ChangeFeed(window=1000, max_bytes=10_000)
    for i in range(1, 21):
        feed.publish([ch(i, "k", "x" * 1000)], i)
    held = feed.read(feed.horizon, "", 0)[0]
    assert 5 <= len(held) <= 10 and held[-1].index == 20
    assert sum(c.size() for c in held) <= 10_000


def test_read_blocks_until_a_change_or_the_timeout() -> None:
    feed = ChangeFeed()
    t0 = time.monotonic()
    assert feed.read(0, "", timeout=0.2) == ([], 0)
    assert time.monotonic() - t0 >= 0.19
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(feed.read(0, "x", timeout=10)))
    reader.start()
    time.sleep(0.05)
    feed.publish([], 1)  # a NOOP: the reader wakes, finds nothing for it, cursor moves
    reader.join(5)
    assert got == [([], 1)]


def test_reset_after_a_snapshot_install_compacts_older_cursors() -> None:
    feed = ChangeFeed()
    feed.publish([ch(1, "a"), ch(2, "b")], 2)
    feed.reset(50)
    with pytest.raises(Compacted):
        feed.read(2, "", 0)
    assert feed.read(50, "", 0) == ([], 50)
    feed.publish([ch(51, "c")], 51)
    assert feed.read(50, "", 0) == ([ch(51, "c")], 51)


def test_close_wakes_blocked_readers() -> None:
    feed = ChangeFeed()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            feed.read(0, "", timeout=30)
        except FeedClosed as err:
            errors.append(err)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.05)
    feed.close()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(FeedClosed):
        feed.read(0, "", 0)


def test_driver_feeds_applied_changes_only(tmp_path: Path) -> None:
    cfg = load_config(
        {
            "id": "solo",
            "data_dir": str(tmp_path / "d"),
            "election_ms": "100",
            "heartbeat_ms": "10",
            "watch_window": "50",
        },
        {},
        "solo",
    )
    d = NodeDriver(cfg)
    d.start()
    try:
        wait_leader(d)
        put = d.propose(Command(op=Op.PUT, key="w/a", value="1", client_id="c", seq=1), 10)
        d.propose(Command(op=Op.PUT, key="w/a", value="1", client_id="c", seq=1), 10)  # dedup
        d.propose(Command(op=Op.PUT, key="w/a", value="2", prev_value="nope"), 10)  # CAS fails
        d.propose(Command(op=Op.DELETE, key="w/missing"), 10)  # nothing removed
        gone = d.propose(Command(op=Op.DELETE, key="w/a"), 10)
        changes, cursor = d.feed.read(0, "w/", 0)
        assert [(c.index, c.op) for c in changes] == [(put.index, "put"), (gone.index, "delete")]
        assert cursor == d.sm.applied_index and d.feed.window == 50
    finally:
        d.stop(2)
