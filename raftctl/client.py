"""client.py — raftctl's HTTP client for raftkv nodes (``requests``, keep-alive).

Contract:
- ``Transport`` does one request to one node and returns a ``Reply`` (status, JSON body, the
  ``X-Raft-Leader/Term/Index`` headers); any connection-level failure becomes ``NodeUnreachable``.
  One ``Transport`` per thread: a ``requests.Session`` (keep-alive connections per node) is not
  meant to be shared between threads. Its urllib3 ``Retry`` policy retries a failed connect for
  any method (nothing was sent) and a lost answer only for GET/HEAD; a write whose bytes went out
  is never re-sent at this layer (``KVClient`` retries it with the same ``X-Request-Id``).
  Request URLs are sent byte for byte as built (no re-quoting, no dot-segment removal), so a key
  reaches the node in the wire form of ``raftkv.keycodec``.
- ``KVClient`` talks to a whole cluster: it sends to the known leader first (learned from
  ``X-Raft-Leader`` and each node's ``/v1/status``), moves to the next endpoint when a node is
  unreachable, waits and retries while there is no leader (503), until a deadline. Writes carry
  ``X-Request-Id: <client-id>:<seq>``, the SAME id on every retry of one logical write, so a retry
  after an ambiguous failure (timeout, dropped connection) is applied at most once by the node.
- Node errors map to the ``raftctl.errors`` tree: 404 on a key → ``KeyNotFound``, 412 →
  ``CompareFailed``, no answer before the deadline → ``Unavailable``, other 4xx → ``NodeError``;
  a write answered 504 (outcome unknown), or sent without an answer (timeout, reset), and not
  settled by a retry before the deadline (a retry answered 409 or 5xx settles nothing) →
  ``OutcomeUnknown`` (exit 3: "unknown outcome", never "failed").
- Every key travels in the wire form of ``raftkv.keycodec`` (``key_path``, ``encode_query_value``)
  on every target.
"""

from __future__ import annotations

import itertools
import json
import ssl
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import requests
import urllib3.exceptions
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from raftctl.errors import (
    CompareFailed,
    KeyNotFound,
    NodeError,
    OutcomeUnknown,
    Unavailable,
    UsageError,
)
from raftkv.errors import InvalidKey
from raftkv.keycodec import encode_query_value, key_path

__all__ = [
    "STREAM_ERRORS",
    "KVClient",
    "NodeUnreachable",
    "Reply",
    "Transport",
    "iter_chunks",
    "iter_lines",
    "normalize_url",
    "root_cause",
]

JSON = Any


class NodeUnreachable(Exception):
    """The node did not answer at the connection level (refused, timeout, reset). ``sent`` is
    False only when the connection was never made (the node cannot have seen the request)."""

    def __init__(self, url: str, why: str, *, sent: bool = True) -> None:
        super().__init__(f"{url}: {why}")
        self.url = url
        self.why = why
        self.sent = sent


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


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_policy() -> Retry:
    """Connect failures: retry once, any method (the request was not sent). A read failure
    (reset, timeout, dropped keep-alive connection after sending): retry once, but only for
    GET/HEAD/OPTIONS; a PUT/DELETE/POST whose bytes went out is never re-sent here. Statuses
    are not retried here: ``KVClient`` handles 503 (it learns the leader from the answer)."""
    return Retry(
        total=2, connect=1, read=1, redirect=0, status=0, other=0,
        allowed_methods=IDEMPOTENT_METHODS, status_forcelist=(), backoff_factor=0,
        raise_on_status=False, raise_on_redirect=False, respect_retry_after_header=False,
    )  # fmt: skip


def root_cause(err: BaseException) -> str:
    """The innermost reason of a ``requests`` error ("[Errno 111] Connection refused", "timed
    out", "Remote end closed connection without response"), not urllib3's wrapper text."""
    seen: set[int] = set()
    best: BaseException = err
    todo: list[BaseException] = [err]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if not type(cur).__module__.startswith(("requests", "urllib3")) and str(cur):
            best = cur
        nxt = [
            getattr(cur, "reason", None),
            cur.__cause__,
            cur.__context__,
            *(a for a in cur.args if isinstance(a, BaseException)),
        ]
        todo.extend(n for n in nxt if isinstance(n, BaseException))
    return str(best) or type(best).__name__


def _never_connected(err: BaseException) -> bool:
    """True if ``err`` (a ``requests`` error) failed before a connection existed."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # like before: no proxy or .netrc from the environment
    adapter = requests.adapters.HTTPAdapter(max_retries=retry_policy(), pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_TLS: dict[str, str] = {}  # "cafile": the CA bundle every request trusts (requests' verify=)


def use_cacert(path: str | Path | None) -> None:
    """Trust ``path`` (a PEM CA bundle) for https:// nodes from now on (``--cacert``,
    RAFTCTL_CACERT, or a local cluster started with ``raftctl up --tls``); None: the system's."""
    _TLS.clear()
    if path:
        try:
            ssl.create_default_context(cafile=str(path))  # refuse a bundle that cannot load
        except (OSError, ssl.SSLError) as err:
            raise UsageError(f"--cacert {path}: cannot load a CA bundle ({err})") from None
        _TLS["cafile"] = str(path)


def cacert_in_use() -> bool:
    return "cafile" in _TLS


@dataclass
class Transport:
    """Keep-alive connections to the nodes (a ``requests.Session``); one per thread."""

    timeout: float = 5.0
    token: str | None = None
    _session: requests.Session | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        start = time.monotonic()
        resp = self._send(base, method, path, body=body, headers=headers, timeout=timeout)
        try:
            raw = resp.content
        except requests.RequestException as err:
            raise NodeUnreachable(base, root_cause(err), sent=not _never_connected(err)) from err
        elapsed = time.monotonic() - start
        try:
            parsed: JSON = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            parsed = {"error": raw[:200].decode("utf-8", "replace")}
        retry_after: float | None = None
        if resp.headers.get("Retry-After"):
            try:
                retry_after = float(resp.headers["Retry-After"])
            except ValueError:
                retry_after = None
        return Reply(
            url=base,
            status=resp.status_code,
            body=parsed,
            leader=resp.headers.get("X-Raft-Leader") or None,
            term=_int_header(resp.headers.get("X-Raft-Term")),
            index=_int_header(resp.headers.get("X-Raft-Index")),
            retry_after=retry_after,
            elapsed=elapsed,
        )

    def stream(
        self,
        base: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """``GET`` with the body left on the wire (``stream=True``): read it with
        ``iter_chunks``/``iter_lines`` and close the response. Same TLS trust, token and
        connection-failure mapping (``NodeUnreachable``) as ``request``; ``timeout`` bounds the
        connect and each read, not the whole body."""
        return self._send(base, "GET", path, headers=headers, timeout=timeout, stream=True)

    def _send(
        self,
        base: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> requests.Response:
        if self._session is None:
            self._session = _new_session()
        session = self._session
        hdrs = {"Accept": "application/json"}
        if self.token:  # a comma-separated list (rotation, like the node's): send the first
            hdrs["Authorization"] = f"Bearer {self.token.split(',')[0].strip()}"
        if body is not None:
            hdrs["Content-Type"] = "application/octet-stream"
        hdrs.update(headers or {})
        url = base.rstrip("/") + path
        try:
            prepared = session.prepare_request(
                requests.Request(method, url, data=body, headers=hdrs)
            )
            prepared.url = url  # exactly as built: requests would re-quote it (%2E%2E -> ..)
            return session.send(
                prepared,
                timeout=timeout or self.timeout,
                allow_redirects=False,
                verify=_TLS.get("cafile", True),
                stream=stream,
            )
        except requests.RequestException as err:
            raise NodeUnreachable(base, root_cause(err), sent=not _never_connected(err)) from err


STREAM_ERRORS = (OSError, requests.RequestException, urllib3.exceptions.HTTPError)
"""What reading a streamed body can raise when the node dies, stalls or resets mid-body."""


def iter_chunks(resp: requests.Response, size: int = 1 << 16) -> Iterator[bytes]:
    """The streamed body as it arrives: each piece as soon as the node has sent it (a watch line
    is never held back waiting for ``size`` bytes); raises one of ``STREAM_ERRORS``."""
    while chunk := resp.raw.read1(size, decode_content=True):
        yield chunk


def iter_lines(resp: requests.Response) -> Iterator[bytes]:
    """The streamed body line by line (each with its ``\n``; a last unterminated one too)."""
    pending = b""
    for chunk in iter_chunks(resp):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the KV API -------------------------------------------------------------------------
    def put(self, key: str, value: str, *, prev_value: str | None = None) -> Reply:
        query = _query("prev_value", prev_value) if prev_value is not None else ""
        try:
            body = value.encode("utf-8")
        except UnicodeEncodeError:
            raise NodeError("value must be valid UTF-8", status=400) from None
        reply = self.call("PUT", _key_path(key) + query, body=body, write=True)
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
        query = _query("prefix", prefix)
        if limit is not None:
            query += f"&limit={int(limit)}"
        reply = _ok(self.call("GET", "/v1/kv" + query))
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
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        write: bool = False,
        request_id: bool = True,
    ) -> Reply:
        """One logical request with leader-following and safe retries until the deadline.
        ``request_id=False``: a write the node does not deduplicate (admin changes), sent
        without ``X-Request-Id`` so no relaying node re-sends it on its own."""
        headers = {}
        if write and request_id:
            headers["X-Request-Id"] = f"{self.client_id}:{next(self._seq)}"
        stop = time.monotonic() + self.deadline
        delay = 0.05
        last = "no attempt made"
        unknown: str | None = None  # a 504 / lost answer on a write: it may be applied
        while True:
            for url in self._candidates():
                try:
                    reply = self.transport.request(url, method, path, body=body, headers=headers)
                except NodeUnreachable as err:
                    last = f"{err.url} unreachable ({err.why})"
                    if write and err.sent:  # it went out and no answer came: may be applied
                        unknown = f"{err.url}: no answer ({err.why})"
                    if self._leader_url == url:
                        self._leader_url = None
                    self._rr = (self._rr + 1) % len(self.urls)
                    continue
                if reply.status in _RETRY_STATUSES:
                    last = f"{url}: {reply.error}"
                    if write and reply.status == 504:
                        unknown = last
                    hint = reply.leader or (
                        reply.body.get("leader") if isinstance(reply.body, dict) else None
                    )
                    self._learn_leader(hint if isinstance(hint, str) else None)
                    if reply.retry_after is not None:
                        delay = max(delay, min(reply.retry_after, 0.25))
                    continue
                self._learn_leader(reply.leader)
                if unknown is not None and not _settles(reply):
                    # e.g. 500 from another node, 409 session_expired: about this attempt only;
                    # the earlier one that got no answer may still have been applied.
                    raise _with(
                        OutcomeUnknown(
                            f"{method} {path} may or may not have been applied ({unknown}); "
                            f"a retry did not settle it ({url} answered {reply.status}: "
                            f"{reply.error})"
                        ),
                        reply,
                    )
                return reply
            if time.monotonic() + delay > stop:
                if unknown is not None:
                    raise OutcomeUnknown(
                        f"{method} {path} may or may not have been applied ({unknown}); "
                        f"retries for {self.deadline:.0f}s did not settle it"
                    )
                raise Unavailable(
                    f"no replica could serve {method} {path} within {self.deadline:.0f}s: {last}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _settles(reply: Reply) -> bool:
    """Does this answer to a retried write (same ``X-Request-Id``) tell the write's outcome?
    A 2xx/404/412 does (the node's exactly-once table answers for an applied first attempt); so
    does a 4xx refusal of the request itself (the first attempt was refused the same way). A 409
    (the node no longer remembers this request id) or a 5xx says nothing about the first attempt."""
    return reply.status < 500 and reply.status != 409


def _key_path(key: str) -> str:
    """The key's path in the wire form of ``raftkv.keycodec``; a key no node would take is
    refused here, before anything is sent."""
    try:
        return key_path(key)
    except InvalidKey as err:
        raise NodeError(str(err), status=400) from None


def _query(name: str, text: str) -> str:
    """``?name=<text in the codec's wire form>``; text that is not UTF-8 → ``NodeError``."""
    try:
        return f"?{name}=" + encode_query_value(text)
    except InvalidKey:
        raise NodeError(f"{name} must be valid UTF-8", status=400) from None


_E = TypeVar("_E", bound=NodeError)


def _with(err: _E, reply: Reply) -> _E:
    err.reply = reply
    return err


def _ok(reply: Reply) -> Reply:
    if 200 <= reply.status < 300:
        return reply
    if isinstance(reply.body, dict) and reply.body.get("code") == "outcome_unknown":
        raise _with(OutcomeUnknown(f"{reply.url}: {reply.error}"), reply)
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
