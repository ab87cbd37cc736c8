"""transport.py — sends Raft messages to peers over keep-alive HTTP, one sender thread per peer.

Contract:
- ``send(messages)`` never blocks on the network: it appends each message to its destination's
  queue and wakes that peer's sender. A slow or dead peer only fills its own bounded queue (the
  oldest messages are dropped: Raft retransmits, so loss is safe and stale heartbeats are useless).
- Each sender takes everything queued for its peer and POSTs it as ONE batch
  (``POST /raft/v1/messages {"messages": [...]}``, ``Authorization: Bearer <token>`` when the
  cluster has a token) on a persistent HTTP/1.1 connection (httpconn.py: a lean client; the
  standard ``http.client`` cost ~4x the CPU per request). While a POST is in flight new messages
  accumulate, so batching grows with load.
- The answer to a POST may carry the peer's own messages for us (``{"messages": [...]}``: the
  replies its driver produced while handling our batch, see driver.py); they are handed to
  ``on_reply(peer, objs)``. So a leader gets its followers' acknowledgements without a second
  HTTP request in the other direction.
- Failures (connect refused, timeout, non-2xx) drop that batch, close the connection and back off
  exponentially (``backoff_min`` .. ``backoff_max``). Every reconnect opens a new socket and
  resolves the host name again (``socket.create_connection``; no DNS cache in the process), so a
  pod recreated with a new IP is found on the next attempt.
- ``stop()`` ends the senders (queued messages are dropped).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from raftkv.server.httpconn import KeepAliveConnection

__all__ = ["PeerSender", "PeerTransport"]

log = logging.getLogger(__name__)

RAFT_PATH = "/raft/v1/messages"


class _Msg(Protocol):
    @property
    def dst(self) -> str: ...


Encoder = Callable[[Any], dict[str, Any]]


class PeerSender:
    """The queue and thread sending to one peer."""

    def __init__(
        self,
        peer_id: str,
        url: str,
        encode: Encoder,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        max_queue: int = 4096,
        max_batch_bytes: int = 4 << 20,
        backoff_min: float = 0.05,
        backoff_max: float = 1.0,
        on_result: Callable[[str, bool, int], None] | None = None,
        on_reply: Callable[[str, list[Any]], None] | None = None,
    ) -> None:
        self.peer_id = peer_id
        self._on_reply = on_reply
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._encode = encode
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._max_queue = max_queue
        self._max_batch_bytes = max_batch_bytes
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._on_result = on_result
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._stopped = False
        self._stop_evt = threading.Event()
        self._conn = KeepAliveConnection(self._host, self._port, timeout, tls=self._https)
        self._thread = threading.Thread(
            target=self._run, name=f"raftkv-send-{peer_id}", daemon=True
        )
        self.dropped = 0
        self.sent = 0
        self.failures = 0
        self.connected = False
        self._last_rejection = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._stop_evt.set()
            self._queue.clear()
            self._cond.notify()
        self._thread.join(timeout)
        self._close()

    def enqueue(self, msgs: Iterable[Any]) -> None:
        with self._cond:
            q = self._queue
            q.extend(msgs)
            over = len(q) - self._max_queue
            if over > 0:
                for _ in range(over):
                    q.popleft()
                self.dropped += over
            self._cond.notify()

    # ------------------------------------------------------------------ sender thread
    def _take(self) -> list[Any] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            batch = list(self._queue)
            self._queue.clear()
            return batch

    def _run(self) -> None:
        backoff = 0.0
        while True:
            batch = self._take()
            if batch is None:
                return
            ok = self._post_all(batch)
            if self._on_result is not None:
                self._on_result(self.peer_id, ok, len(batch))
            if ok:
                backoff = 0.0
                continue
            self.failures += 1
            backoff = min(self._backoff_max, max(self._backoff_min, backoff * 2))
            # Drop what queued during the failed attempt too: it is stale by now, and the
            # core retransmits what still matters after the backoff.
            with self._cond:
                self.dropped += len(self._queue)
                self._queue.clear()
            if self._stop_evt.wait(backoff):
                return

    def _post_all(self, batch: list[Any]) -> bool:
        chunk: list[dict[str, Any]] = []
        size = 0
        for msg in batch:
            try:
                obj = self._encode(msg)
            except Exception:  # a bug in encoding must not kill the sender thread
                log.exception("peer=%s event=encode-failed", self.peer_id)
                continue
            chunk.append(obj)
            size += len(obj.get("entries") or ()) * 64 + 256
            if size >= self._max_batch_bytes:
                if not self._post(chunk):
                    return False
                chunk, size = [], 0
        return self._post(chunk) if chunk else True

    def _close(self) -> None:
        self._conn.close()
        self.connected = False

    def _post(self, chunk: list[dict[str, Any]]) -> bool:
        body = json.dumps({"messages": chunk}, separators=(",", ":")).encode()
        # a big snapshot needs more than the heartbeat-sized timeout
        timeout = self._timeout + len(body) / (20 << 20)
        for attempt in (0, 1):
            reused = self._conn.is_open
            try:
                status, _, data = self._conn.request(
                    "POST", RAFT_PATH, body, self._headers, timeout
                )
            except (OSError, ValueError) as err:
                self._close()
                if reused and attempt == 0:
                    continue  # the peer closed an idle keep-alive connection: retry once
                if self.connected or self.failures == 0:
                    log.warning(
                        "peer=%s event=send-failed url=%s error=%s",
                        self.peer_id,
                        self.url,
                        type(err).__name__,
                    )
                return False
            self.connected = True
            if status // 100 != 2:
                if status != self._last_rejection:  # once per kind, not per heartbeat
                    log.warning(
                        "peer=%s event=send-rejected status=%d body=%s",
                        self.peer_id,
                        status,
                        data[:200].decode("utf-8", "replace"),
                    )
                self._last_rejection = status
                return False
            self._last_rejection = 0
            self.sent += len(chunk)
            if self._on_reply is not None and b'"messages"' in data:
                try:
                    replies = json.loads(data)["messages"]
                except (ValueError, KeyError, TypeError):
                    log.warning("peer=%s event=bad-reply body=%s", self.peer_id, data[:200])
                else:
                    if isinstance(replies, list) and replies:
                        self._on_reply(self.peer_id, replies)
            return True
        return False


class PeerTransport:
    """One ``PeerSender`` per peer other than ``self_id``."""

    def __init__(
        self,
        self_id: str,
        peer_urls: Mapping[str, str],
        encode: Encoder,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        on_result: Callable[[str, bool, int], None] | None = None,
        on_reply: Callable[[str, list[Any]], None] | None = None,
    ) -> None:
        self.self_id = self_id
        self._encode = encode
        self._opts: dict[str, Any] = {
            "token": token, "timeout": timeout, "on_result": on_result, "on_reply": on_reply,
        }
        self.senders = {
            pid: self._make(pid, url)
            for pid, url in sorted(peer_urls.items())
            if pid != self_id
        }
        self._started = False

    def _make(self, peer_id: str, url: str) -> PeerSender:
        return PeerSender(peer_id, url, self._encode, **self._opts)

    def start(self) -> None:
        self._started = True
        for s in self.senders.values():
            s.start()

    def set_peer(self, peer_id: str, url: str) -> None:
        """Send to ``peer_id`` at ``url`` from now on (a member added through the log, or one
        whose URL changed). Called by the driver thread only."""
        if peer_id == self.self_id:
            return
        old = self.senders.get(peer_id)
        if old is not None and old.url == url:
            return
        sender = self._make(peer_id, url)
        self.senders[peer_id] = sender
        if self._started:
            sender.start()
        if old is not None:
            old.stop(timeout=0.1)
        log.info("peer=%s event=peer-set url=%s", peer_id, url)

    def remove_peer(self, peer_id: str) -> None:
        """Stop sending to ``peer_id`` (removed from the cluster). Driver thread only."""
        sender = self.senders.pop(peer_id, None)
        if sender is not None:
            sender.stop(timeout=0.1)
            log.info("peer=%s event=peer-removed", peer_id)

    def stop(self) -> None:
        for s in self.senders.values():
            s.stop()

    def send(self, messages: Iterable[_Msg]) -> None:
        by_peer: dict[str, list[_Msg]] = {}
        for m in messages:
            by_peer.setdefault(m.dst, []).append(m)
        for dst, msgs in by_peer.items():
            sender = self.senders.get(dst)
            if sender is None:
                log.warning("peer=%s event=unknown-destination count=%d", dst, len(msgs))
                continue
            sender.enqueue(msgs)

