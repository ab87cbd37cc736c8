"""PeerTransport against tiny local HTTP servers: batching, token, replies, dead peers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from raftkv.raft import Heartbeat, HeartbeatResponse, Message, encode_message
from raftkv.server.transport import PeerTransport
from tests.support.ports import ReservedPort
from tests.support.waiting import wait_until


def hb(dst: str, n: int) -> Heartbeat:
    """A real message, numbered by its commit field."""
    return Heartbeat(src="me", dst=dst, term=1, commit=n)


def n_of(obj: dict[str, Any]) -> int:
    return int(obj["commit"])


@dataclass
class Consumer:
    """The transport's Consumer: records what replies hand over."""

    delivered: list[Message] = field(default_factory=list)

    def deliver(self, msgs: Sequence[Message]) -> None:
        self.delivered.extend(msgs)

    def deliver_and_reply(self, msgs: Sequence[Message], timeout: float) -> list[Message]:
        self.delivered.extend(msgs)
        return []


class Recorder:
    def __init__(self, delay: float = 0.0, reply: list[Any] | None = None) -> None:
        self.posts: list[tuple[dict[str, str], list[Any]]] = []
        self.delay = delay
        self.reply = reply or []
        self.gate = threading.Event()
        self.gate.set()


def serve(rec: Recorder) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.gate.wait(10)
            rec.posts.append((dict(self.headers), json.loads(body)["messages"]))
            out = json.dumps({"ok": True, "messages": rec.reply}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the server picks its own port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def peers() -> Iterator[tuple[Recorder, int, Recorder, int]]:
    a = Recorder(reply=[encode_message(HeartbeatResponse(src="a", dst="me", term=1))])
    b = Recorder()
    sa, pa = serve(a)
    sb, pb = serve(b)
    try:
        yield a, pa, b, pb
    finally:
        a.gate.set()
        b.gate.set()
        sa.shutdown()
        sb.shutdown()


def test_batches_token_and_replies(peers: tuple[Recorder, int, Recorder, int]) -> None:
    a, pa, b, pb = peers
    consumer = Consumer()
    t = PeerTransport(
        "me",
        {"me": "http://127.0.0.1:1", "a": f"http://127.0.0.1:{pa}", "b": f"http://127.0.0.1:{pb}"},
        consumer,
        token="tok",
    )
    t.start()
    try:
        a.gate.clear()  # hold the first POST so later messages pile up into one batch
        t.send([hb("a", 0)])
        wait_until(
            lambda: t.senders["a"]._queue == type(t.senders["a"]._queue)(), 5, "first message taken"
        )
        t.send([hb("a", n) for n in range(1, 50)] + [hb("b", 99)])
        wait_until(lambda: b.posts, 5, "peer b served while a is stuck")
        a.gate.set()
        wait_until(lambda: sum(len(m) for _, m in a.posts) == 50, 5, "all 50 delivered to a")
        assert len(a.posts) == 2  # one POST for the first message, ONE for the 49 queued
        assert [n_of(m) for _, ms in a.posts for m in ms] == list(range(50))
        headers, msgs = b.posts[0]
        assert headers["Authorization"] == "Bearer tok" and msgs == [encode_message(hb("b", 99))]
        wait_until(lambda: len(consumer.delivered) == 2, 5, "replies handed over")
        assert consumer.delivered[0] == HeartbeatResponse(src="a", dst="me", term=1)
        assert "me" not in t.senders
    finally:
        t.stop()


def test_dead_peer_does_not_block_live_one(peers: tuple[Recorder, int, Recorder, int]) -> None:
    a, pa, _, _ = peers
    dead = ReservedPort()  # nothing listens there, nothing can
    t = PeerTransport(
        "me",
        {"a": f"http://127.0.0.1:{pa}", "dead": f"http://127.0.0.1:{dead.port}"},
        Consumer(),
        timeout=0.5,
    )
    t.start()
    try:
        start = time.monotonic()
        for n in range(5):
            t.send([hb("dead", n), hb("a", n)])
            wait_until(lambda n=n: len(a.posts) > n, 5, f"message {n} reached the live peer")
        assert time.monotonic() - start < 5
        wait_until(lambda: t.senders["dead"].failures >= 1, 5, "dead peer failure counted")
        assert t.senders["dead"].sent == 0
    finally:
        t.stop()
        dead.close()


def test_queue_is_bounded() -> None:
    t = PeerTransport("me", {"x": "http://127.0.0.1:1"}, Consumer())
    s = t.senders["x"]  # not started: nothing drains the queue
    s._max_queue = 10
    t.send([hb("x", n) for n in range(25)])
    assert len(s._queue) == 10 and s.dropped == 15
    assert [m.commit for m in s._queue if isinstance(m, Heartbeat)] == list(range(15, 25))
    t.send([hb("nobody", 1)])  # unknown destination: logged and dropped


def test_every_post_carries_the_cluster_id_and_the_sender(
    peers: tuple[Recorder, int, Recorder, int],
) -> None:
    a, pa, _, _ = peers
    t = PeerTransport("me", {"a": f"http://127.0.0.1:{pa}"}, Consumer(), cluster_id="c0ffee")
    t.start()
    try:
        t.send([hb("a", 1)])
        wait_until(lambda: a.posts, 5, "delivered")
        headers = a.posts[0][0]
        assert headers["X-Raftkv-Cluster-Id"] == "c0ffee" and headers["X-Raftkv-Node"] == "me"
    finally:
        t.stop()
