"""realnodes.py — a real 3-node raftkv cluster for raftctl's tests, each node behind a relay that
can inject network faults.

The nodes are real ``raftkv serve`` processes (``tests.integration.cluster.LocalCluster``): every
answer raftctl sees — routes, status codes, ``X-Raft-*`` headers, leader forwarding, the
exactly-once table behind ``X-Request-Id`` — comes from the real server, so these tests cannot
drift from it. In front of each node sits a ``Relay`` (an HTTP proxy on its own port): raftctl and
the other nodes (``--peers`` names the relays) reach the node only through it. The relay adds no
API of its own; it only records and breaks traffic, as a network or a crashing node would:

- ``seen`` / ``requests_to``: the client requests each node received (not Raft traffic, not a
  follower's forwarding to the leader);
- ``take_down(node)``: the node takes client requests and closes the connection unanswered;
  ``refuse(node)``: nothing listens on its port (connection refused);
- ``fail_next(node, *statuses)``: its next client requests are answered with these statuses
  (``{"error": ...}``, ``Retry-After: 1``), as a failing node or gateway would, without reaching it;
- ``drop_after_apply``: the node's next write reaches it (and is applied) but its answer is lost;
- ``silent_close``: the node closes each keep-alive connection after answering, unannounced;
- ``corrupt_reads(suffix, value=)``: reads of those keys are answered with a wrong value;
- ``without_route(prefix)``: the nodes answer 404 there, as an older version would;
- ``lag_behind(node, n)``: Raft traffic to the node is dropped while ``n`` writes commit.

Leadership is real too: raft-0 has the shortest election timeout and wins the first election;
raft-1 and raft-2 never campaign on their own during a test (20 s), so ``elect(node)`` (a real
``POST /v1/admin/transfer-leader``) and ``elect(None)`` (only one node left, which has never seen
a leader) are the only ways leadership changes. ``stop()`` kills every process it started.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from raftkv.keycodec import key_path
from tests.integration.cluster import LocalCluster
from tests.support.waiting import wait_until

__all__ = ["RealCluster", "Seen"]

_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "host",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
FORWARDED = "X-Raftkv-Forwarded-By"  # raftkv.server.forward: a follower relaying to the leader


@dataclass
class Seen:
    node: str
    method: str
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Relay:
    """One node's port: forwards to the real node, records and breaks client traffic."""

    def __init__(self, cluster: RealCluster, node: str) -> None:
        self.cluster = cluster
        self.node = node
        self.upstream = 0  # the real node's port (set before it starts)
        self._server: _Server | None = None
        self.port = 0
        self.listen()

    def listen(self) -> None:
        self._server = _Server(("127.0.0.1", self.port), _handler(self))
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def server(self) -> _Server:
        assert self._server is not None, "refused"
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The node's answer, or None when it gave none (stopped, killed, reset)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
        try:
            conn.request(
                method,
                target,
                body=body if body or method in ("PUT", "POST") else None,
                headers={k: v for k, v in headers.items() if k.lower() not in _HOP},
            )
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()


def _handler(relay: Relay) -> type[BaseHTTPRequestHandler]:
    cluster = relay.cluster

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in _HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if relay.node in cluster.silent_close:
                self.wfile.flush()
                self._drop()

        def _relay(self, answer: tuple[int, list[tuple[str, str]], bytes] | None) -> None:
            if answer is None:
                self._drop()
            else:
                self._send(*answer)

        def _dispatch(self) -> None:
            body = self._body()
            headers = dict(self.headers)
            node = relay.node
            if self.path.startswith("/raft/"):  # the cluster's own traffic
                if node in cluster.partitioned:
                    self._drop()
                    return
                self._relay(relay.forward(self.command, self.path, headers, body))
                return
            if FORWARDED not in headers:  # a client's request, not a follower relaying one
                with cluster.lock:
                    cluster.seen.append(Seen(node, self.command, self.path, headers))
                    injected = cluster.fail.get(node, [])
                    status = injected.pop(0) if injected else None
                    status = status or next(
                        (s for p, s in cluster.missing.items() if self.path.startswith(p)), None
                    )
                    drop_answer = node in cluster.drop_after_apply and self.command in (
                        "PUT",
                        "DELETE",
                    )
                    if drop_answer:
                        cluster.drop_after_apply.discard(node)
                if node in cluster.down:
                    self._drop()
                    return
                if status is not None:
                    raw = json.dumps({"error": f"injected {status}", "leader": None}).encode()
                    self._send(
                        status, [("Content-Type", "application/json"), ("Retry-After", "1")], raw
                    )
                    return
                if drop_answer:
                    relay.forward(self.command, self.path, headers, body)  # applied for real
                    self._drop()
                    return
            answer = relay.forward(self.command, self.path, headers, body)
            if answer is None:
                self._drop()  # the node gave no answer: neither does its port
                return
            status, got, raw = answer
            wrong = next((v for k, v in cluster.corrupt.items() if self.path.endswith(k)), None)
            if wrong is not None and self.command == "GET" and status == 200:
                raw = json.dumps({**json.loads(raw), "value": wrong}).encode()
            self._send(status, got, raw)

        do_GET = do_PUT = do_DELETE = do_POST = _dispatch

    return Handler


@dataclass
class RealCluster:
    """Three real nodes (raft-0 leads), each behind a ``Relay``; see the module docstring."""

    root: Path
    ids: tuple[str, ...] = ("raft-0", "raft-1", "raft-2")
    down: set[str] = field(default_factory=set)
    partitioned: set[str] = field(default_factory=set)
    fail: dict[str, list[int]] = field(default_factory=dict)
    drop_after_apply: set[str] = field(default_factory=set)
    silent_close: set[str] = field(default_factory=set)
    corrupt: dict[str, str] = field(default_factory=dict)  # GET path suffix -> value answered
    missing: dict[str, int] = field(default_factory=dict)  # path prefix -> status answered
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    relays: dict[str, Relay] = field(default_factory=dict)
    nodes: LocalCluster | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> RealCluster:
        for node in self.ids:
            self.relays[node] = Relay(self, node)
        nodes = LocalCluster(
            self.root,
            size=len(self.ids),
            election_ms=300,
            heartbeat_ms=50,
            node_args=lambda i: [] if i == 0 else ["--election-ms", "20000"],
        )
        for node, port in zip(self.ids, nodes.ports, strict=True):
            self.relays[node].upstream = port
        nodes.peers = ",".join(f"{n}={self.url(n)}" for n in self.ids)  # peers via the relays
        self.nodes = nodes
        nodes.start()
        assert nodes.wait_for_leader(timeout=60) == 0, nodes.logs()
        wait_until(self._settled, 30, "the leader's first entry applied everywhere", nodes.logs)
        return self

    def _settled(self) -> bool:
        applied = {self.status(n)["last_applied"] for n in self.ids}
        return applied == {self.status(self.ids[0])["commit_index"]} and 0 not in applied

    def stop(self) -> None:
        if self.nodes is not None:
            self.nodes.close()
        for relay in self.relays.values():
            relay.close()

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.relays[node].port}"

    @property
    def urls(self) -> list[str]:
        return [self.url(n) for n in self.ids]

    def _i(self, node: str) -> int:
        return self.ids.index(node)

    @property
    def _local(self) -> LocalCluster:
        assert self.nodes is not None, "start() first"
        return self.nodes

    # -- the real state --------------------------------------------------------------------
    def status(self, node: str) -> dict[str, Any]:
        return self._local.status(self._i(node))

    @property
    def leader(self) -> str | None:
        """The leader as the running nodes report it (None: none known)."""
        leaders = {self.status(self.ids[i]).get("leader") for i in self._local.alive()}
        return leaders.pop() if len(leaders) == 1 else None

    @property
    def index(self) -> int:
        """The leader's commit index (every acknowledged write adds exactly one entry)."""
        leader = self.leader
        assert leader is not None, "no leader"
        return int(self.status(leader)["commit_index"])

    @property
    def store(self) -> dict[str, tuple[str, int]]:
        """Every key as the leader holds it: key -> (value, index), by a linearizable list."""
        leader = self.leader
        assert leader is not None, "no leader"
        reply = self._local.get(self._i(leader), "/v1/kv?prefix=")
        assert reply.status == 200, reply
        return {i["key"]: (i["value"], i["index"]) for i in reply.json["items"]}

    def put(self, key: str, value: str) -> None:
        """Write through the leader, past the relays (setting up a test, not under test)."""
        leader = self.leader
        assert leader is not None, "no leader"
        reply = self._local.request(self._i(leader), "PUT", key_path(key), value)
        assert reply.status == 200, reply

    def clear_keys(self) -> None:
        """Delete every key, through the leader."""
        leader = self.leader
        assert leader is not None, "no leader"
        for key in self.store:
            reply = self._local.request(self._i(leader), "DELETE", key_path(key))
            assert reply.status == 200, reply

    # -- steering ----------------------------------------------------------------------------
    def elect(self, node: str | None) -> None:
        """Make ``node`` the leader (a real leadership transfer), or leave no leader at all:
        every node is stopped, and one that has never seen a leader is started alone."""
        if node is None:
            return self._leaderless()

        def leading() -> bool:
            return self.leader == node and self.status(node)["role"] == "leader"

        for _ in range(3):  # a transfer that times out under load (answered leader null) again
            leader = self.leader
            if leader is not None and leader != node:
                reply = self._local.request(
                    self._i(leader),
                    "POST",
                    "/v1/admin/transfer-leader",
                    json.dumps({"target": node}),
                )
                assert reply.status in (200, 503, 504), reply
            with contextlib.suppress(AssertionError):
                wait_until(leading, 10, f"{node} leading")
                return None
        wait_until(leading, 1, f"{node} leading", self._local.logs)
        return None

    def _leaderless(self) -> None:
        nodes = self._local
        for i in nodes.alive():
            nodes.kill(i)
        last = self.ids[-1]
        for node in self.ids[:-1]:
            self.refuse(node)
        nodes.start_node(self._i(last))
        nodes.wait_serving(self._i(last))
        assert self.status(last)["leader"] is None

    def take_down(self, node: str) -> None:
        self.down.add(node)

    def bring_up(self, node: str) -> None:
        self.down.discard(node)

    def refuse(self, node: str) -> None:
        self.relays[node].close()

    def fail_next(self, node: str, *statuses: int) -> None:
        with self.lock:
            self.fail.setdefault(node, []).extend(statuses)

    def corrupt_reads(self, path_suffix: str, *, value: str) -> None:
        """GETs of paths ending in ``path_suffix`` are answered with ``value`` instead of the
        node's (a node returning a wrong value: what ``verify`` must catch)."""
        self.corrupt[path_suffix] = value

    def without_route(self, path_prefix: str, status: int = 404) -> None:
        """Every node answers ``status`` under ``path_prefix``, as an older version without that
        route would."""
        self.missing[path_prefix] = status

    def requests_to(self, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path_prefix)]

    def lag_behind(self, node: str, entries: int) -> None:
        """Cut ``node`` off from Raft traffic (it keeps answering clients and still names the
        leader) while ``entries`` writes commit: it ends exactly that many entries behind."""
        leader = self.leader
        assert leader is not None and leader != node
        li, ni = self._i(leader), self._i(node)
        wait_until(
            lambda: self.status(node)["last_applied"] == self.status(leader)["commit_index"],
            30,
            f"{node} caught up",
            self._local.logs,
        )
        self.partitioned.add(node)

        def write(n: int) -> int:
            while (status := self._local.put(li, f"lag/{n}", "x").status) == 503:
                time.sleep(0.05)  # busy (a 503 is never applied): send it again
            return status

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(write, range(entries)))
        assert set(statuses) == {200}, sorted(set(statuses))
        behind = self.status(leader)["commit_index"] - self.status(node)["last_applied"]
        assert behind == entries and self.status(node)["leader"] == leader, (behind, ni)


@contextlib.contextmanager
def real_cluster(root: Path) -> Iterator[RealCluster]:
    cluster = RealCluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
