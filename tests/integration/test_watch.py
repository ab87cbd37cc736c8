"""Watch on real ``raftkv serve`` processes: a watcher that resumes from its last index misses and
reorders nothing across a leader kill; 410 compacted; the long poll; ``raftctl watch``."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from raftctl.main import app as raftctl_app
from raftctl.watchstream import WatchStream
from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

END = "w/zz-end"


def start(tmp_path: Path, *flags: str) -> LocalCluster:
    c = LocalCluster(tmp_path)
    c.common += ["--watch-progress-ms", "200", *flags]
    return c


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = start(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.close()


def write(c: LocalCluster, key: str, value: str, rid: str, timeout: float = 60) -> dict[str, Any]:
    """PUT through any live node until acknowledged; retries keep the X-Request-Id."""

    def attempt() -> dict[str, Any] | None:
        for i in c.alive():
            try:
                r = c.put(i, key, value, headers={"X-Request-Id": rid})
            except (OSError, http.client.HTTPException):
                continue
            if r.status == 200:
                return dict(r.json)
            assert r.status in (502, 503, 504), r
        return None

    return wait_until(attempt, timeout, f"write {key} acknowledged", c.logs, interval=0.1)


def collect(stream: WatchStream, out: list[dict[str, Any]], errors: list[BaseException]) -> None:
    try:
        for change in stream:
            out.append(change)
            if change["key"] == END:
                return
    except BaseException as err:  # reported by the test
        errors.append(err)


def test_watcher_misses_nothing_across_a_leader_kill(cluster: LocalCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    order = [leader] + [i for i in range(c.size) if i != leader]
    stream = WatchStream(
        [c.url(i) for i in order], prefix="w/", from_index=0, read_timeout=2.0, deadline=60
    )
    seen: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    watcher = threading.Thread(target=collect, args=(stream, seen, errors), daemon=True)
    watcher.start()
    acked: dict[str, dict[str, Any]] = {}
    c.put_ok(leader, "other/x", "not watched")
    for n in range(40):
        key = f"w/{n:03d}"
        acked[key] = write(c, key, f"v{n}", f"writer:{n + 1}")
        if n == 15:
            wait_until(lambda: len(seen) >= 10, 20, "the watcher streaming from the leader")
            c.kill(leader)  # the node the watcher is connected to
    acked[END] = write(c, END, "done", "writer:999")
    watcher.join(90)
    assert not watcher.is_alive() and not errors, (errors, c.logs())
    assert stream.reconnects >= 1
    indexes = [s["index"] for s in seen]
    assert indexes == sorted(set(indexes)), "changes reordered or repeated"
    assert all(s["key"].startswith("w/") and s["op"] == "put" for s in seen)
    by_key = {s["key"]: s for s in seen}
    assert len(by_key) == len(seen)  # every key was written once: seen once
    for key, ack in acked.items():
        assert key in by_key, f"acknowledged write {key} missed by the watcher"
        assert by_key[key]["index"] == ack["index"] and by_key[key]["value"] == ack["value"]
    # a fresh watch of a survivor from 0 tells the very same story
    survivor = order[1]
    again: list[dict[str, Any]] = []
    replay = WatchStream([c.url(survivor)], prefix="w/", from_index=0, read_timeout=5)
    collect(replay, again, errors)
    assert not errors and again == seen


def test_compacted_long_poll_and_raftctl_watch(tmp_path: Path) -> None:
    c = start(tmp_path, "--watch-window", "5")
    try:
        c.start()
        leader = c.wait_for_leader()
        follower = next(i for i in range(c.size) if i != leader)
        first = c.put_ok(leader, "k", "v0").json["index"]
        for n in range(8):
            c.put_ok(leader, f"fill/{n}", str(n))
        wait_until(
            lambda: c.get(follower, "/v1/kv/fill/7?consistency=stale").status == 200,
            10,
            "the follower applied the writes",
        )
        r = c.get(follower, f"/v1/watch?from_index={first}")
        assert r.status == 410 and r.json["code"] == "compacted", r
        oldest = r.json["oldest_index"]
        assert oldest > first + 1
        conn = http.client.HTTPConnection("127.0.0.1", c.ports[follower], timeout=10)
        try:
            conn.request("GET", f"/v1/watch?from_index={oldest - 1}")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Content-Type") == "application/x-ndjson"
            assert json.loads(resp.readline())["progress"] is True
            assert json.loads(resp.readline())["index"] == oldest  # the oldest change held
        finally:
            conn.close()
        # long poll on a follower: answered when the key changes on the leader
        now = c.status(follower)["last_applied"]
        got: list[Any] = []
        poll = threading.Thread(
            target=lambda: got.append(
                c.get(follower, f"/v1/kv/k?wait_index={now}&timeout=20s", timeout=30)
            )
        )
        poll.start()
        time.sleep(0.3)
        assert not got
        changed = c.put_ok(leader, "k", "v1").json["index"]
        poll.join(30)
        assert got and got[0].status == 200, got
        assert got[0].json == {
            "index": changed,
            "op": "put",
            "key": "k",
            "value": "v1",
            "changed": True,
        }
        timed_out = c.get(follower, f"/v1/kv/k?wait_index={changed}&timeout=300ms")
        assert timed_out.json["changed"] is False and timed_out.json["value"] == "v1"
        # raftctl watch: JSON lines from the given index, in order
        acks = [c.put_ok(leader, f"fill/{n}", str(n)).json["index"] for n in (8, 9)]
        result = CliRunner().invoke(
            raftctl_app,
            [
                "watch",
                "fill/",
                "--from-index",
                str(changed),
                "--max-changes",
                "2",
                "-o",
                "json",
                "--endpoints",
                c.url(follower),
            ],
        )
        assert result.exit_code == 0, result.output
        lines = [json.loads(x) for x in result.stdout.splitlines()]
        assert lines == [
            {"index": acks[0], "op": "put", "key": "fill/8", "value": "8"},
            {"index": acks[1], "op": "put", "key": "fill/9", "value": "9"},
        ]
        # an index the cluster no longer holds: one line, exit 1
        result = CliRunner().invoke(
            raftctl_app, ["watch", "", "--from-index", "1", "--endpoints", c.url(follower)]
        )
        assert result.exit_code == 1 and "no longer held" in result.stderr
    finally:
        c.close()


def test_sigterm_ends_open_watches_with_a_final_line_and_exits_promptly(
    cluster: LocalCluster,
) -> None:
    c = cluster
    c.wait_for_leader()
    node = 1
    conn = http.client.HTTPConnection("127.0.0.1", c.ports[node], timeout=20)
    try:
        conn.request("GET", "/v1/watch?prefix=")
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.readline())["progress"] is True
        t0 = time.monotonic()
        c.procs[node].send_signal(15)  # SIGTERM to the gunicorn master, as Kubernetes does
        lines = [json.loads(x) for x in iter(resp.readline, b"")]
        assert lines and lines[-1]["code"] == "shutting_down", lines
        assert all("error" not in x for x in lines[:-1])
    finally:
        conn.close()
    assert c.procs[node].wait(30) == 0, c.logs()
    assert time.monotonic() - t0 < 15  # the watch did not hold the graceful shutdown up
