"""forward.py — relays a client request from a follower to the leader and returns its answer.

Contract: ``forward(leader, method, target, headers, body)`` sends the request over a keep-alive
connection owned by the calling thread (one per leader address per request thread, so no locking)
and returns ``(status, headers, body)`` exactly as the leader answered. ``target`` is the request
target exactly as the client sent it (keypath.forward_target: never a decoded path, so the leader
parses the same key). The request carries ``X-Raftkv-Forwarded-By: <this node>``: a node that
receives a forwarded request never forwards it again (no loops; it answers 503 instead).

Failures, and what the client is told:
- the request never went out (connect refused / timed out, DNS): ``NoLeader`` (503, safe to retry);
- it went out and the connection failed or timed out before a whole answer: for a read, 503
  (reads are safe to retry); for a write, ``OutcomeUnknown`` (504 ``outcome_unknown``): the leader
  may have applied it, so "failed" would be a lie;
- a read, or a KV write with ``X-Request-Id`` (the leader applies it at most once; admin changes
  are not deduplicated, so they are never re-sent), that met a reset
  on a REUSED connection before any answer is re-sent once on a new connection (the keep-alive
  race: the leader closed the idle connection as we sent). A write without ``X-Request-Id`` is
  never re-sent once its bytes went out. If that re-sent write then fails in any way, even
  before it went out, or is refused (409, or 5xx other than 504: e.g. the leader's worker was
  restarted behind the same listening socket and is a follower now), the answer is
  ``OutcomeUnknown``: the first attempt may have been applied. 2xx/4xx answers settle it (the
  leader's exactly-once table answers for an applied first attempt) and are relayed.
Any exception closes and drops the pooled connection, so the next request starts clean. An idle
connection the leader already closed (seen with a zero-timeout poll before use), or idle for
longer than ``MAX_IDLE_S``, is replaced before anything is sent.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from raftkv.errors import NoLeader, OutcomeUnknown
from raftkv.server.httpconn import KeepAliveConnection

__all__ = ["FORWARDED_HEADER", "MAX_IDLE_S", "PASS_RESPONSE_HEADERS", "Forwarder"]

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
# An idle pooled connection older than this is replaced: well below the idle timeouts of the
# servers in front of a leader (gunicorn's keep-alive here is 75 s; common proxies use 60 s).
MAX_IDLE_S = 30.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KV_PREFIX = "/v1/kv/"


class _Pooled:
    __slots__ = ("conn", "last_used")

    def __init__(self, conn: KeepAliveConnection) -> None:
        self.conn = conn
        self.last_used = time.monotonic()


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
        self._targets: dict[str, str] = {}  # member id -> its URL
        for pid, url in peer_urls.items():
            self._set(pid, url)
        self.timeout = timeout
        self._local = threading.local()
        # where to find a member that is not among the flags' peers (added through the log)
        self.resolver: Callable[[str], str | None] | None = None

    def _set(self, pid: str, url: str) -> None:
        self._targets[pid] = url

    def can_forward_to(self, leader: str | None) -> bool:
        if leader is None or leader == self.self_id:
            return False
        if leader not in self._targets and self.resolver is not None:
            url = self.resolver(leader)
            if url:
                self._set(leader, url)
        return leader in self._targets

    def _pool(self) -> dict[str, _Pooled]:
        pool: dict[str, _Pooled] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _conn(self, leader: str) -> tuple[KeepAliveConnection, bool]:
        """This thread's connection to ``leader`` and whether it was used before."""
        pool = self._pool()
        pooled = pool.get(leader)
        if pooled is not None:
            conn = pooled.conn
            stale = time.monotonic() - pooled.last_used > MAX_IDLE_S
            if conn.is_open and not stale and not conn.peer_closed():
                return conn, True
            self._drop(leader)
        conn = KeepAliveConnection.for_url(
            self._targets[leader], self.timeout, ssl_context=self._ssl_context
        )
        pool[leader] = _Pooled(conn)
        return conn, False

    def _drop(self, leader: str) -> None:
        pooled = self._pool().pop(leader, None)
        if pooled is not None:
            pooled.conn.close()

    def forward(
        self,
        leader: str,
        method: str,
        target: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if not self.can_forward_to(leader):
            raise NoLeader(f"cannot forward to {leader!r}", leader=leader)
        out = {k: v for k in PASS_REQUEST_HEADERS if (v := headers.get(k)) is not None}
        out[FORWARDED_HEADER] = self.self_id
        safe = method in SAFE_METHODS
        # only KV writes are deduplicated by X-Request-Id (admin changes are not)
        resendable = safe or ("X-Request-Id" in out and target.startswith(KV_PREFIX))
        went_out = False  # a write's bytes reached the wire on an earlier attempt
        for attempt in (0, 1):
            conn, reused = self._conn(leader)
            try:
                status, resp_headers, data = conn.request(method, target, body, out, self.timeout)
            except Exception as err:  # the connection is closed: never reuse it
                self._drop(leader)
                why = type(err).__name__
                if not conn.sent and not (went_out and not safe):
                    raise NoLeader(
                        f"leader {leader} unreachable ({why}); retry", leader=leader
                    ) from None
                timed_out = isinstance(err, TimeoutError)
                if reused and attempt == 0 and resendable and not timed_out:
                    # A leader that dies resets every connection, including one whose request it
                    # had already read and proposed: if the re-send cannot even connect, the
                    # first attempt's fate is still unknown (never "no leader, safe to retry").
                    went_out = True
                    continue
                if safe:
                    raise NoLeader(
                        f"leader {leader} did not answer the relayed read ({why}); retry",
                        leader=leader,
                    ) from None
                raise OutcomeUnknown(
                    f"the write was relayed to leader {leader} but its answer was lost "
                    f"({why}): it may or may not have been applied; retry with the same "
                    "X-Request-Id to apply it at most once"
                ) from None
            except BaseException:
                self._drop(leader)
                raise
            if went_out and (status == 409 or (status >= 500 and status != 504)):
                # The re-send reached a leader that refused it (a restarted worker behind the
                # same listening socket: a follower now, or without our session): that answer
                # is about the re-send only; the first attempt may have been applied.
                self._drop(leader)
                raise OutcomeUnknown(
                    f"the write was relayed to leader {leader}, the connection was reset, and "
                    f"the re-sent request was refused ({status}): the first attempt may or may "
                    "not have been applied; retry with the same X-Request-Id to apply it at "
                    "most once"
                )
            if conn.is_open:
                pooled = self._pool().get(leader)
                if pooled is not None:
                    pooled.last_used = time.monotonic()
            else:
                self._drop(leader)
            hdrs = [
                (k, v)
                for k in PASS_RESPONSE_HEADERS
                if (v := resp_headers.get(k.lower())) is not None
            ]
            return status, hdrs, data
        raise NoLeader(f"leader {leader} unreachable; retry", leader=leader)  # pragma: no cover
