"""forward.py — relays a client request from a follower to the leader and returns its answer.

Contract: ``forward(leader, method, path_qs, headers, body)`` sends the request over a keep-alive
connection owned by the calling thread (one per leader address per request thread, so no locking)
and returns ``(status, headers, body)`` exactly as the leader answered. The request carries
``X-Raftkv-Forwarded-By: <this node>``: a node that receives a forwarded request never forwards it
again (no forwarding loops; it answers 503 instead). A network failure raises ``NoLeader`` (503,
Retry-After), never a traceback. A request is re-sent only when a reused idle connection turned out
to be closed before anything was sent back (the usual keep-alive race), which cannot apply it twice
in practice; clients that need certainty send ``X-Request-Id``.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from raftkv.errors import NoLeader

__all__ = ["FORWARDED_HEADER", "PASS_RESPONSE_HEADERS", "Forwarder"]

FORWARDED_HEADER = "X-Raftkv-Forwarded-By"
PASS_REQUEST_HEADERS = ("Content-Type", "X-Request-Id", "Authorization")
PASS_RESPONSE_HEADERS = (
    "Content-Type",
    "Retry-After",
    "X-Raft-Leader",
    "X-Raft-Term",
    "X-Raft-Index",
    "X-Raftkv-Served-By",
    "WWW-Authenticate",
    "Allow",
)


class Forwarder:
    def __init__(
        self,
        self_id: str,
        peer_urls: Mapping[str, str],
        timeout: float,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.self_id = self_id
        self._ssl_context = ssl_context
        self._targets: dict[str, tuple[bool, str, int]] = {}
        for pid, url in peer_urls.items():
            parts = urlsplit(url)
            https = parts.scheme == "https"
            self._targets[pid] = (https, parts.hostname or "", parts.port or (443 if https else 80))
        self.timeout = timeout
        self._local = threading.local()

    def can_forward_to(self, leader: str | None) -> bool:
        return leader is not None and leader != self.self_id and leader in self._targets

    def _conn(self, leader: str) -> tuple[http.client.HTTPConnection, bool]:
        pool: dict[str, http.client.HTTPConnection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get(leader)
        if conn is not None:
            return conn, True
        https, host, port = self._targets[leader]
        if https:
            ctx = self._ssl_context() if self._ssl_context else None
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        pool[leader] = conn
        return conn, False

    def _drop(self, leader: str) -> None:
        pool: dict[str, http.client.HTTPConnection] = getattr(self._local, "pool", {})
        conn = pool.pop(leader, None)
        if conn is not None:
            conn.close()

    def forward(
        self,
        leader: str,
        method: str,
        path_qs: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if not self.can_forward_to(leader):
            raise NoLeader(f"cannot forward to {leader!r}", leader=leader)
        out = {k: v for k in PASS_REQUEST_HEADERS if (v := headers.get(k)) is not None}
        out[FORWARDED_HEADER] = self.self_id
        out["Connection"] = "keep-alive"
        for attempt in (0, 1):
            conn, reused = self._conn(leader)
            try:
                conn.request(method, path_qs, body=body, headers=out)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self._drop(leader)
                if reused and attempt == 0:
                    continue
                raise NoLeader(
                    f"leader {leader} unreachable ({type(err).__name__}); retry", leader=leader
                ) from None
            except (OSError, http.client.HTTPException) as err:
                self._drop(leader)
                raise NoLeader(
                    f"leader {leader} unreachable ({type(err).__name__}); retry", leader=leader
                ) from None
            if resp.will_close:
                self._drop(leader)
            hdrs = [(k, v) for k in PASS_RESPONSE_HEADERS if (v := resp.getheader(k)) is not None]
            return resp.status, hdrs, data
        raise NoLeader(f"leader {leader} unreachable; retry", leader=leader)  # pragma: no cover
