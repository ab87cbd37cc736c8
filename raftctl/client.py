"""client.py — raftctl's HTTP client for raftkv nodes (stdlib ``http.client``, keep-alive).

Contract:
- ``Transport`` does one request to one node and returns a ``Reply`` (status, JSON body, the
  ``X-Raft-Leader/Term/Index`` headers); any connection-level failure becomes ``NodeUnreachable``.
  One ``Transport`` per thread: it keeps one keep-alive connection per node and is not thread-safe.
- ``KVClient`` talks to a whole cluster: it sends to the known leader first (learned from
  ``X-Raft-Leader`` and each node's ``/v1/status``), moves to the next endpoint when a node is
  unreachable, waits and retries while there is no leader (503), until a deadline. Writes carry
  ``X-Request-Id: <client-id>:<seq>``, the SAME id on every retry of one logical write, so a retry
  after an ambiguous failure (timeout, dropped connection) is applied at most once by the node.
- Node errors map to the ``raftctl.errors`` tree: 404 on a key → ``KeyNotFound``, 412 →
  ``CompareFailed``, no answer before the deadline → ``Unavailable``, other 4xx → ``NodeError``.
"""

from __future__ import annotations

import http.client
import itertools
import json
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from raftctl.errors import CompareFailed, KeyNotFound, NodeError, Unavailable, UsageError

__all__ = ["KVClient", "NodeUnreachable", "Reply", "Transport", "normalize_url"]

JSON = Any


class NodeUnreachable(Exception):
    """The node did not answer at the connection level (refused, timeout, reset)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{url}: {why}")
        self.url = url
        self.why = why


@dataclass(frozen=True)
class Reply:
    """One HTTP answer from a node."""

    url: str
    status: int
    body: JSON
    leader: str | None = None
    term: int | None = None
    index: int | None = None
    retry_after: float | None = None
    elapsed: float = 0.0

    @property
    def error(self) -> str:
        if isinstance(self.body, dict) and "error" in self.body:
            return str(self.body["error"])
        return f"HTTP {self.status}"


def normalize_url(url: str) -> str:
    """``host:port`` or ``http://host:port/`` → ``http://host:port``."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _int_header(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


_TLS: dict[str, ssl.SSLContext] = {}


def use_cacert(path: str | None) -> None:
    """Trust ``path`` (a PEM CA bundle) for https:// nodes from now on (``--cacert``,
    RAFTCTL_CACERT, or a local cluster started with ``raftctl up --tls``); None: the system's."""
    _TLS.clear()
    if path:
        try:
            _TLS["ctx"] = ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as err:
            raise UsageError(f"--cacert {path}: cannot load a CA bundle ({err})") from None


def cacert_in_use() -> bool:
    return "ctx" in _TLS


@dataclass
class Transport:
    """One keep-alive connection per node; not thread-safe (use one per thread)."""

    timeout: float = 5.0
    token: str | None = None
    _conns: dict[str, http.client.HTTPConnection] = field(default_factory=dict)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _conn(self, base: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(base)
        conn = self._conns.get(base)
        if conn is None:
            host = parts.hostname or "127.0.0.1"
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=self.timeout,
                                                   context=_TLS.get("ctx"))
            else:
                conn = http.client.HTTPConnection(host, parts.port or 80, timeout=self.timeout)
            self._conns[base] = conn
        return conn, parts.path.rstrip("/")

    def request(
        self,
        base: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request to the node at ``base``; raises ``NodeUnreachable``."""
        reused = base in self._conns
        conn, prefix = self._conn(base)
        conn.timeout = timeout or self.timeout
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        hdrs = {"Accept": "application/json"}
        if self.token:  # a comma-separated list (rotation, like the node's): send the first
            hdrs["Authorization"] = f"Bearer {self.token.split(',')[0].strip()}"
        if body is not None:
            hdrs["Content-Type"] = "application/octet-stream"
        hdrs.update(headers or {})
        start = time.monotonic()
        try:
            conn.request(method, prefix + path, body=body, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
        except (TimeoutError, OSError, http.client.HTTPException) as err:
            conn.close()
            self._conns.pop(base, None)
            if reused and isinstance(err, _STALE_CONNECTION):
                # The node closed an idle keep-alive connection: try once on a fresh one.
                return self.request(base, method, path, body=body, headers=headers,
                                    timeout=timeout)
            why = type(err).__name__ if not str(err) else str(err)
            raise NodeUnreachable(base, why) from err
        elapsed = time.monotonic() - start
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self._conns.pop(base, None)
        try:
            parsed: JSON = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            parsed = {"error": raw[:200].decode("utf-8", "replace")}
        retry_after: float | None = None
        if resp.getheader("Retry-After"):
            try:
                retry_after = float(resp.getheader("Retry-After", "0"))
            except ValueError:
                retry_after = None
        return Reply(
            url=base,
            status=resp.status,
            body=parsed,
            leader=resp.getheader("X-Raft-Leader") or None,
            term=_int_header(resp.getheader("X-Raft-Term")),
            index=_int_header(resp.getheader("X-Raft-Index")),
            retry_after=retry_after,
            elapsed=elapsed,
        )


_RETRY_STATUSES = frozenset({502, 503, 504})


class KVClient:
    """Cluster-aware KV client: follows the leader, retries safely, raises ``raftctl.errors``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        ids: Mapping[str, str] | None = None,
        token: str | None = None,
        timeout: float = 5.0,
        deadline: float = 20.0,
        client_id: str | None = None,
    ) -> None:
        if not urls:
            raise ValueError("KVClient needs at least one URL")
        self.urls = [normalize_url(u) for u in urls]
        self.ids: dict[str, str] = {k: normalize_url(v) for k, v in (ids or {}).items()}
        self.transport = Transport(timeout=timeout, token=token)
        self.deadline = deadline
        self.client_id = client_id or uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)
        self._leader_url: str | None = None
        self._discovered = False
        self._rr = 0

    def close(self) -> None:
        self.transport.close()

    # -- the KV API -------------------------------------------------------------------------
    def put(self, key: str, value: str, *, prev_value: str | None = None) -> Reply:
        query = "?" + urlencode({"prev_value": prev_value}) if prev_value is not None else ""
        reply = self.call("PUT", _key_path(key) + query, body=value.encode(), write=True)
        if reply.status == 412:
            raise _with(CompareFailed(key, _current_value(reply.body)), reply)
        return _ok(reply)

    def get(self, key: str, *, stale: bool = False) -> Reply:
        query = "?consistency=stale" if stale else ""
        reply = self.call("GET", _key_path(key) + query)
        if reply.status == 404:
            raise _with(KeyNotFound(key), reply)
        return _ok(reply)

    def delete(self, key: str) -> Reply:
        reply = self.call("DELETE", _key_path(key), write=True)
        if reply.status == 404:
            raise _with(KeyNotFound(key), reply)
        return _ok(reply)

    def list_keys(
        self, prefix: str = "", limit: int | None = None
    ) -> tuple[Reply, list[dict[str, Any]]]:
        params: dict[str, str] = {"prefix": prefix}
        if limit is not None:
            params["limit"] = str(limit)
        reply = _ok(self.call("GET", "/v1/kv?" + urlencode(params)))
        return reply, list_items(reply.body)

    def status(self, url: str, *, timeout: float | None = None) -> JSON:
        """``/v1/status`` of one node (raises ``NodeUnreachable`` / ``NodeError``)."""
        return _ok(self.transport.request(url, "GET", "/v1/status", timeout=timeout)).body

    # -- routing ----------------------------------------------------------------------------
    def _discover(self) -> None:
        """Learn node id → URL from every endpoint's /v1/status (once)."""
        self._discovered = True
        for url in self.urls:
            try:
                body = self.status(url, timeout=2.0)
            except (NodeUnreachable, NodeError):
                continue
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                self.ids.setdefault(body["id"], url)

    def _learn_leader(self, leader: str | None) -> None:
        if not leader:
            return
        if leader not in self.ids and not self._discovered:
            self._discover()
        self._leader_url = self.ids.get(leader, self._leader_url)

    def _candidates(self) -> list[str]:
        order = self.urls[self._rr :] + self.urls[: self._rr]
        if self._leader_url:
            order = [self._leader_url] + [u for u in order if u != self._leader_url]
        return order

    def call(
        self, method: str, path: str, *, body: bytes | None = None, write: bool = False
    ) -> Reply:
        """One logical request with leader-following and safe retries until the deadline."""
        headers = {"X-Request-Id": f"{self.client_id}:{next(self._seq)}"} if write else {}
        stop = time.monotonic() + self.deadline
        delay = 0.05
        last = "no attempt made"
        while True:
            for url in self._candidates():
                try:
                    reply = self.transport.request(url, method, path, body=body, headers=headers)
                except NodeUnreachable as err:
                    last = f"{err.url} unreachable ({err.why})"
                    if self._leader_url == url:
                        self._leader_url = None
                    self._rr = (self._rr + 1) % len(self.urls)
                    continue
                if reply.status in _RETRY_STATUSES:
                    last = f"{url}: {reply.error}"
                    hint = reply.leader or (
                        reply.body.get("leader") if isinstance(reply.body, dict) else None
                    )
                    self._learn_leader(hint if isinstance(hint, str) else None)
                    if reply.retry_after is not None:
                        delay = max(delay, min(reply.retry_after, 0.25))
                    continue
                self._learn_leader(reply.leader)
                return reply
            if time.monotonic() + delay > stop:
                raise Unavailable(f"no replica could serve {method} {path} within "
                                  f"{self.deadline:.0f}s: {last}")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _key_path(key: str) -> str:
    if not key:
        raise NodeError("key must not be empty", status=400)
    return "/v1/kv/" + quote(key, safe="")


_E = TypeVar("_E", bound=NodeError)


def _with(err: _E, reply: Reply) -> _E:
    err.reply = reply
    return err


def _ok(reply: Reply) -> Reply:
    if 200 <= reply.status < 300:
        return reply
    raise _with(
        NodeError(f"{reply.url} answered {reply.status}: {reply.error}", status=reply.status), reply
    )


def _current_value(body: JSON) -> str | None:
    if isinstance(body, dict):
        for name in ("current", "value", "current_value"):
            if isinstance(body.get(name), str):
                return str(body[name])
    return None


def list_items(body: JSON) -> list[dict[str, Any]]:
    """The ``[{key, value, index}]`` list out of a ``GET /v1/kv`` body (bare list or wrapped)."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict):
        for name in ("items", "kvs", "keys", "entries"):
            if isinstance(body.get(name), list):
                return [item for item in body[name] if isinstance(item, dict)]
    return []
