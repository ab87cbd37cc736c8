"""fakenode.py — an in-process stand-in for a raftkv cluster's HTTP API, for raftctl unit tests.

It speaks the node's API as the README's API table defines it (``/v1/status``,
``/v1/kv/<key>`` with ``prev_value``, ``/v1/kv?prefix=``, ``X-Raft-*`` headers, 503 without a
leader, ``X-Request-Id`` de-duplication) over real sockets, one server per fake node, sharing one
store. Tests steer it: ``elect``, ``take_down`` (the node closes connections unanswered),
``fail_next`` (the next requests to a node get these statuses), ``drop_after_apply`` (apply the
next write, then drop the connection: an ambiguous failure). The kind target's tests put a TCP
relay (their fake ``kubectl port-forward``) in front of these nodes.
It is NOT a Raft implementation; real-cluster behaviour is tested against real nodes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Seen:
    node: str
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeCluster:
    ids: tuple[str, ...] = ("raft-0", "raft-1", "raft-2")
    leader: str | None = "raft-0"
    term: int = 1
    index: int = 1
    store: dict[str, tuple[str, int]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    fail: dict[str, list[int]] = field(default_factory=dict)
    drop_after_apply: set[str] = field(default_factory=set)
    silent_close: set[str] = field(default_factory=set)  # close keep-alive conns unannounced
    applied_ids: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    servers: dict[str, ThreadingHTTPServer] = field(default_factory=dict)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeCluster:
        for node in self.ids:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self, node))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
            self.servers[node] = server
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.servers[node].server_address[1]}"

    @property
    def urls(self) -> list[str]:
        return [self.url(n) for n in self.ids]

    # -- steering ----------------------------------------------------------------------------
    def elect(self, node: str | None) -> None:
        with self.lock:
            self.term += 1
            self.leader = node

    def take_down(self, node: str) -> None:
        self.down.add(node)

    def bring_up(self, node: str) -> None:
        self.down.discard(node)

    def fail_next(self, node: str, *statuses: int) -> None:
        self.fail.setdefault(node, []).extend(statuses)

    def requests_to(self, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path_prefix)]

    # -- the API -------------------------------------------------------------------------------
    def status_of(self, node: str) -> dict[str, Any]:
        applied = max(0, self.index - self.lag.get(node, 0))
        return {
            "id": node,
            "role": "leader" if node == self.leader else "follower",
            "term": self.term,
            "leader": self.leader,
            "commit_index": self.index,
            "last_applied": applied,
            "last_log_index": self.index,
            "snapshot_index": 0,
            "members": list(self.ids),
        }

    def handle(self, node: str, method: str, target: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, dict[str, str], Any] | None:
        """(status, headers, json body), or None to drop the connection unanswered."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.seen.append(Seen(node, method, target, headers))
            if node in self.down:
                return None
            if self.fail.get(node):
                status = self.fail[node].pop(0)
                return status, {"Retry-After": "1"}, {"error": f"injected {status}",
                                                      "leader": None}
            if path == "/v1/status":
                return 200, {}, self.status_of(node)
            kv_headers = {"X-Raft-Leader": self.leader or "", "X-Raft-Term": str(self.term),
                          "X-Raft-Index": str(self.index)}
            if not path.startswith("/v1/kv"):
                return 404, {}, {"error": f"no such route: {method} {path}"}
            if self.leader is None:
                return 503, {"Retry-After": "1"}, {"error": "no leader", "leader": None}
            if path == "/v1/kv" and method == "GET":
                prefix = query.get("prefix", [""])[0]
                items = [{"key": k, "value": v, "index": i}
                         for k, (v, i) in sorted(self.store.items()) if k.startswith(prefix)]
                return 200, kv_headers, {"prefix": prefix, "items": items, "count": len(items)}
            key = unquote(path[len("/v1/kv/"):])
            rid = headers.get("X-Request-Id")
            if method in ("PUT", "DELETE") and rid and rid in self.applied_ids:
                status, recorded = self.applied_ids[rid]
                return status, kv_headers, recorded
            if method == "GET":
                if key not in self.store:
                    return 404, kv_headers, {"error": f"key not found: {key}"}
                value, idx = self.store[key]
                return 200, kv_headers, {"key": key, "value": value, "index": idx}
            if method == "PUT":
                prev = query.get("prev_value", [None])[0]
                current = self.store.get(key)
                if prev is not None and (current is None or current[0] != prev):
                    return 412, kv_headers, {"error": "compare failed", "key": key,
                                             "value": current[0] if current else None}
                self.index += 1
                self.store[key] = (body.decode(), self.index)
                result = {"key": key, "value": body.decode(), "index": self.index,
                          "term": self.term, "leader": self.leader}
                status = 200
            elif method == "DELETE":
                if key not in self.store:
                    return 404, kv_headers, {"error": f"key not found: {key}"}
                self.index += 1
                del self.store[key]
                result = {"key": key, "deleted": True, "index": self.index, "term": self.term}
                status = 200
            else:
                return 405, {}, {"error": "method not allowed"}
            if rid:
                self.applied_ids[rid] = (status, result)
            if node in self.drop_after_apply:
                self.drop_after_apply.discard(node)
                return None
            return status, {**kv_headers, "X-Raft-Index": str(self.index)}, result


def _respond(handler: BaseHTTPRequestHandler,
             answer: tuple[int, dict[str, str], Any] | None) -> None:
    if answer is None:
        handler.close_connection = True
        handler.connection.close()
        return
    status, headers, obj = answer
    raw = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(raw)


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        raise NotImplementedError

    do_GET = do_PUT = do_DELETE = do_POST = lambda self: self._dispatch()


def _handler_for(cluster: FakeCluster, node: str) -> type[BaseHTTPRequestHandler]:
    class Handler(_Base):
        def _dispatch(self) -> None:
            body = self._body()
            answer = cluster.handle(node, self.command, self.path, body, dict(self.headers))
            _respond(self, answer)
            if node in cluster.silent_close:
                self.wfile.flush()
                self.close_connection = True

    return Handler
