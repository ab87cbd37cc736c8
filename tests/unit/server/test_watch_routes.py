"""GET /v1/watch and the long poll GET /v1/kv/<key>?wait_index= against a fake node."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from raftkv.config import load_config
from raftkv.server.app import build_app
from raftkv.server.watch import parse_duration
from tests.unit.server.fakenode import PEERS, FakeNode
from tests.unit.server.test_routes import assert_json_error


def make(**flags: str) -> tuple[FakeNode, Flask]:
    cfg = load_config({"id": "n0", "peers": PEERS, "watch_progress_ms": "50", **flags}, {}, "n0")
    node = FakeNode(cfg)
    return node, build_app(node)


def lines(resp: Any) -> Iterator[dict[str, Any]]:
    buf = b""
    for chunk in resp.response:
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def test_watch_streams_changes_in_order_with_progress_lines() -> None:
    _, app = make()
    c = app.test_client()
    c.put("/v1/kv/a/1", data="x")  # index 1, before from_index
    resp = c.get("/v1/watch?prefix=a/&from_index=1", buffered=False)
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    stream = lines(resp)
    assert next(stream) == {"progress": True, "index": 1}
    c.put("/v1/kv/a/2", data="y")
    c.put("/v1/kv/b/1", data="other prefix")
    c.delete("/v1/kv/a/1")
    assert next(stream) == {"index": 2, "op": "put", "key": "a/2", "value": "y"}
    assert next(stream) == {"index": 4, "op": "delete", "key": "a/1", "value": None}
    assert next(stream) == {"progress": True, "index": 4}  # idle: the current index
    resp.close()


def test_watch_from_an_old_index_replays_then_the_window_cuts_it_off() -> None:
    _, app = make(watch_window="3")
    c = app.test_client()
    for i in range(3):
        c.put(f"/v1/kv/k{i}", data=str(i))
    resp = c.get("/v1/watch?from_index=0", buffered=False)
    stream = lines(resp)
    assert next(stream)["progress"]
    assert [next(stream)["index"] for _ in range(3)] == [1, 2, 3]
    for i in range(3, 10):  # this watcher is not reading: it falls behind the window
        c.put(f"/v1/kv/k{i}", data=str(i))
    seen = list(stream)  # it gets what it can, then a final error line and the end
    assert seen[-1]["code"] == "compacted" and "fell behind" in seen[-1]["error"]
    assert len(seen) == 1  # nothing after index 3 is still held in full: cut off at once


def test_watch_older_than_the_window_is_410_compacted() -> None:
    _, app = make(watch_window="2")
    c = app.test_client()
    for i in range(5):
        c.put(f"/v1/kv/k{i}", data=str(i))
    body = assert_json_error(c.get("/v1/watch?from_index=1"), 410, "compacted")
    assert body["oldest_index"] == 4
    assert c.get("/v1/watch?from_index=3", buffered=False).status_code == 200


@pytest.mark.parametrize("query", ["from_index=-1", "from_index=x", "nope=1", "prefix=a&x=1"])
def test_watch_bad_query_is_400(query: str) -> None:
    _, app = make()
    assert_json_error(app.test_client().get(f"/v1/watch?{query}"), 400, "invalid_query")


def test_watchers_are_bounded_503() -> None:
    _, app = make(max_watchers="2")
    c = app.test_client()
    open_ = [c.get("/v1/watch", buffered=False) for _ in range(2)]
    assert all(r.status_code == 200 for r in open_)
    body = assert_json_error(c.get("/v1/watch"), 503, "too_many_watchers")
    assert "at most 2" in body["error"]
    assert_json_error(c.get("/v1/kv/k?wait_index=0&timeout=1s"), 503, "too_many_watchers")
    open_[0].close()  # a watcher that goes away frees its slot
    again = c.get("/v1/watch", buffered=False)
    assert again.status_code == 200
    again.close()
    open_[1].close()


def test_shutdown_ends_watch_streams_with_an_error_line() -> None:
    node, app = make()
    resp = app.test_client().get("/v1/watch", buffered=False)
    stream = lines(resp)
    next(stream)
    node.feed.close()
    assert [s.get("code") for s in stream] == ["shutting_down"]
    assert_json_error(app.test_client().get("/v1/watch"), 503, "shutting_down")


def test_long_poll_answers_the_first_change_after_wait_index() -> None:
    _, app = make()
    c = app.test_client()
    c.put("/v1/kv/k", data="v1")  # index 1
    c.put("/v1/kv/other", data="x")  # index 2
    r = c.get("/v1/kv/k?wait_index=0")
    assert r.status_code == 200 and r.get_json() == {
        "index": 1,
        "op": "put",
        "key": "k",
        "value": "v1",
        "changed": True,
    }
    got: list[Any] = []
    t = threading.Thread(
        target=lambda: got.append(
            app.test_client().get("/v1/kv/k?wait_index=1&timeout=10s").get_json()
        )
    )
    t.start()
    time.sleep(0.1)
    assert not got  # still waiting: nothing changed k after index 1
    c.put("/v1/kv/other", data="y")
    c.delete("/v1/kv/k")  # index 4
    t.join(10)
    assert got == [{"index": 4, "op": "delete", "key": "k", "value": None, "changed": True}]


def test_long_poll_times_out_with_the_current_value() -> None:
    _, app = make()
    c = app.test_client()
    c.put("/v1/kv/k", data="v1")
    t0 = time.monotonic()
    r = c.get("/v1/kv/k?wait_index=1&timeout=300ms")
    assert time.monotonic() - t0 >= 0.29
    assert r.status_code == 200 and r.get_json() == {
        "key": "k",
        "value": "v1",
        "index": 1,
        "changed": False,
        "checked_index": 1,
    }
    absent = c.get("/v1/kv/nope?wait_index=1&timeout=0.1").get_json()
    assert absent["value"] is None and absent["changed"] is False


def test_long_poll_bad_input() -> None:
    _, app = make(watch_window="1")
    c = app.test_client()
    assert_json_error(c.get("/v1/kv/k?wait_index=a"), 400, "invalid_query")
    assert_json_error(c.get("/v1/kv/k?wait_index=1&timeout=forever"), 400, "invalid_query")
    assert_json_error(c.get("/v1/kv/k?wait_index=1&timeout=0s"), 400, "invalid_query")
    assert_json_error(c.get("/v1/kv/k?wait_index=1&consistency=stale"), 400, "invalid_query")
    c.put("/v1/kv/a", data="1")
    c.put("/v1/kv/b", data="1")
    assert_json_error(c.get("/v1/kv/k?wait_index=0"), 410, "compacted")


def test_parse_duration() -> None:
    assert parse_duration("30s") == 30 and parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120 and parse_duration("1.5") == 1.5
    assert parse_duration(None) == 30


def test_watch_options_are_validated() -> None:
    from raftkv.errors import ConfigError

    cfg = load_config({"id": "n0", "peers": PEERS}, {}, "n0")
    assert (cfg.watch_window, cfg.max_watchers, cfg.watch_progress_ms) == (10_000, 16, 5_000)
    small = load_config({"id": "n0", "peers": PEERS, "threads": "8"}, {}, "n0")
    assert small.max_watchers == 2  # a quarter of the threads at most
    env = {"RAFTKV_WATCH_WINDOW": "7", "RAFTKV_MAX_WATCHERS": "0"}
    cfg = load_config({"id": "n0", "peers": PEERS}, env, "n0")
    assert cfg.watch_window == 7 and cfg.max_watchers == 0
    with pytest.raises(ConfigError, match="--max-watchers/RAFTKV_MAX_WATCHERS"):
        load_config({"id": "n0", "peers": PEERS, "threads": "8", "max_watchers": "3"}, {}, "n0")
    with pytest.raises(ConfigError, match="--watch-window"):
        load_config({"id": "n0", "peers": PEERS, "watch_window": "0"}, {}, "n0")


def test_max_watchers_zero_disables_watches() -> None:
    _, app = make(max_watchers="0")
    assert_json_error(app.test_client().get("/v1/watch"), 503, "too_many_watchers")
