"""Hostile clients against real ``raftkv serve`` processes (issue 15 item 6).

Garbage on the Raft endpoint, truncated bodies, huge heads, oversized values and slow clients
(slowloris: heads and bodies trickled a byte at a time, more connections than the node has
threads) get a JSON error or a closed connection — never a crash, never a hang of other
requests, never a change of state. ``RAFTKV_CLIENT_TIMEOUT_S=2`` makes the slow-client deadlines
short enough to watch them fire.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

THREADS = 8
CLIENT_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(
        tmp_path_factory.mktemp("hostile"),
        size=3,
        threads=THREADS,
        env={"RAFTKV_CLIENT_TIMEOUT_S": str(CLIENT_TIMEOUT_S)},
    )
    try:
        c.start()
        c.wait_for_leader()
        yield c
    finally:
        c.close()


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, half-close, return everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), raw[:300]
    return int(head.split()[1]), json.loads(body)


def _state(c: LocalCluster) -> list[tuple[object, ...]]:
    out = []
    for i in range(c.size):
        st = c.status(i)
        out.append((st["term"], st["commit_index"]))
    return out


def _kv_items(c: LocalCluster, i: int) -> object:
    return c.get(i, "/v1/kv?consistency=stale").json["items"]


def test_garbage_on_the_raft_endpoint_is_rejected_without_effect(cluster: LocalCluster) -> None:
    c = cluster
    leader = c.wait_for_leader()
    c.put_ok(leader, "before", "1")
    follower = (leader + 1) % c.size
    wait_until(lambda: _kv_items(c, follower), 10, "replication of 'before'")
    before = _state(c)
    port = c.ports[follower]
    bodies = [
        b"\x00\xff" * 100,
        b"[" * 200_000,  # deeper than the JSON decoder's recursion limit: was a 500
        b'{"messages": "no"}',
        json.dumps({"messages": [{"v": 1, "type": "AppendEntries", "src": "raft-0"}]}).encode(),
        json.dumps(
            {
                "messages": [
                    {
                        "v": 1,
                        "type": "Heartbeat",
                        "src": c.ids[leader],
                        "dst": "someone-else",
                        "term": 10**6,
                        "commit": 0,
                        "context": 0,
                    }
                ]
            }
        ).encode(),
    ]
    for body in bodies:
        r = c.request(
            follower, "POST", "/raft/v1/messages", body, {"Content-Type": "application/json"}
        )
        assert r.status == 400, r
        assert r.json["error"] and r.json["code"] == "malformed_raft_message", r
    # a body announced far bigger than the limit: refused before it is read
    raw = _raw(
        port, b"POST /raft/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{"
    )
    status, obj = _status_and_json(raw)
    assert status == 413 and obj["error"]
    assert _state(c) == before  # no term bump, no commit, no leader change
    assert c.status(follower)["leader"] == c.ids[leader]


def test_truncated_bodies_change_nothing(cluster: LocalCluster) -> None:
    c = cluster
    i = c.wait_for_leader()
    before = _kv_items(c, i)
    for path in (b"/v1/kv/trunc", b"/raft/v1/messages"):
        method = b"PUT" if b"kv" in path else b"POST"
        raw = _raw(
            c.ports[i],
            method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-ten-b",
        )
        # the client is gone: a closed connection (or an error nobody reads) is the answer
        assert raw == b"" or raw.startswith(b"HTTP/1.1 4"), raw[:200]
        # an empty admin body means "any target": a truncated one must not be read as empty
    leader_before = c.status(i)["leader"]
    raw = _raw(
        c.ports[i],
        b"POST /v1/admin/transfer-leader HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n",
    )
    assert raw == b"" or raw.startswith(b"HTTP/1.1 4"), raw[:200]
    assert c.status(i)["leader"] == leader_before
    assert c.get(i, "/v1/kv/trunc?consistency=stale").status == 404
    assert _kv_items(c, i) == before
    assert c.get(i, "/healthz").status == 200


def test_huge_heads_and_values_get_json_errors(cluster: LocalCluster) -> None:
    c = cluster
    i = c.wait_for_leader()
    port = c.ports[i]
    raw = _raw(
        port, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    status, obj = _status_and_json(raw)
    assert status in (400, 431) and obj["error"], raw[:300]
    raw = _raw(port, b"GET /v1/kv/" + b"k" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, obj = _status_and_json(raw)
    assert status in (400, 414) and obj["error"], raw[:300]
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
    raw = _raw(port, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    status, obj = _status_and_json(raw)
    assert status in (400, 431) and obj["error"], raw[:300]
    r = c.put(i, "big", "v" * ((1 << 20) + 1))
    assert r.status == 413 and r.json["code"] == "payload_too_large", r
    assert c.get(i, "/v1/kv/big?consistency=stale").status == 404
    raw = _raw(port, b"BREW /v1/kv/x HTCPCP/1.0\r\n\r\n")
    assert raw == b"" or _status_and_json(raw)[0] == 400


def _slow_client(port: int, prefix: bytes, stop: threading.Event, closed: list[float]) -> None:
    """Trickle ``prefix`` a byte at a time, then keep trickling header bytes, until the server
    closes the connection (recorded in ``closed``) or ``stop`` is set."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
    except OSError:
        return
    t0 = time.monotonic()
    with s:
        data = prefix + b"X-Slow: " + b"a" * 10_000
        for n in range(len(data)):
            if stop.is_set():
                return
            try:
                s.sendall(data[n : n + 1])
            except OSError:
                closed.append(time.monotonic() - t0)
                return
            if stop.wait(0.2):
                return


@pytest.mark.parametrize("what", ["head", "body"])
def test_slow_clients_do_not_stop_the_node(cluster: LocalCluster, what: str) -> None:
    c = cluster
    leader = c.wait_for_leader()
    target = (leader + 1) % c.size  # a follower: it must also keep receiving Raft traffic
    if what == "head":
        prefix = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"
    else:  # a complete head announcing a small body that never finishes arriving
        prefix = b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    stop = threading.Event()
    closed: list[float] = []
    attackers = [
        threading.Thread(
            target=_slow_client, args=(c.ports[target], prefix, stop, closed), daemon=True
        )
        for _ in range(THREADS * 3)
    ]
    for t in attackers:
        t.start()
    try:
        time.sleep(1.0)  # every attacker has sent some bytes and would hold a thread by now
        worst = 0.0
        for n in range(20):
            t0 = time.monotonic()
            assert c.get(target, "/v1/status", timeout=5).status == 200
            worst = max(worst, time.monotonic() - t0)
            c.put_ok(target, f"during-{what}-{n}", "x", timeout=10)  # relayed: Raft works
        assert worst < 2.0, f"a status request took {worst:.2f}s during the attack"
        wait_until(
            lambda: len(closed) >= len(attackers) // 2,
            CLIENT_TIMEOUT_S * 10,
            "the node to close the slow connections",
        )
        assert max(closed) < CLIENT_TIMEOUT_S * 10
    finally:
        stop.set()
        for t in attackers:
            t.join(5)
    assert c.get(target, "/v1/kv/slow?consistency=stale").status == 404


def test_node_survived_everything(cluster: LocalCluster) -> None:
    c = cluster
    assert c.alive() == list(range(c.size))
    leader = c.wait_for_leader()
    c.put_ok(leader, "after", "ok")
    for i in range(c.size):
        wait_until(
            lambda i=i: c.get(i, "/v1/kv/after?consistency=stale").status == 200,
            10,
            f"node {i} has 'after'",
        )


def test_forwarded_keys_are_sent_as_received(cluster: LocalCluster) -> None:
    """Found by schemathesis: a follower relayed the percent-DECODED path, so a non-latin-1 key
    was a 500 (UnicodeEncodeError) and 'a%23b' reached the leader as key 'a' (issue 10)."""
    c = cluster
    leader = c.wait_for_leader()
    follower = (leader + 1) % c.size
    assert c.request(follower, "GET", "/v1/kv/%C3%98%C2%B0").status == 404
    c.put_ok(follower, "%C3%BCn", "umlaut")
    c.put_ok(follower, "tag%23frag", "hash")
    assert c.get(leader, "/v1/kv/%C3%BCn").json["key"] == "ün"
    assert c.get(leader, "/v1/kv/tag%23frag").json["key"] == "tag#frag"
    assert c.get(leader, "/v1/kv/tag?consistency=stale").status == 404


def test_expect_100_continue_is_answered_before_the_body(cluster: LocalCluster) -> None:
    """curl sends `Expect: 100-continue` for big bodies and waits for "100 Continue": the worker
    that assembles requests off-thread must not wait for a body that is waiting for it."""
    c = cluster
    i = c.wait_for_leader()
    value = b"v" * 600_000
    with socket.create_connection(("127.0.0.1", c.ports[i]), timeout=5) as s:
        s.sendall(
            b"PUT /v1/kv/expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(value)
        )
        interim = s.recv(100)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        s.sendall(value)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert c.get(i, "/v1/kv/expect").json["value"] == value.decode()
