"""transport.py — the wire between Raft peers: it owns encoding, decoding and reply routing.

The shape of hashicorp/raft's ``Transport`` + ``Consumer()``: the driver hands typed messages
(``raftkv.raft.Message``) to ``PeerTransport.send`` and receives typed messages through the
``Consumer`` it gave the transport; JSON, the codec and HTTP stay in here.

Outbound:
- ``send(messages)`` never blocks on the network: a message for a peer whose POST to us is being
  answered right now (``hold_replies``) rides back on that POST's response; every other message
  is appended to its destination's queue and wakes that peer's sender. A slow or dead peer only
  fills its own bounded queue (the oldest messages are dropped: Raft retransmits, so loss is safe
  and stale heartbeats are useless).
- Each sender takes everything queued for its peer, encodes it (codec.py) and POSTs it as ONE
  batch (``POST /raft/v1/messages {"messages": [...]}``, ``Authorization: Bearer <token>`` when
  the cluster has a token) on a persistent HTTP/1.1 connection (httpconn.py: a lean client; the
  standard ``http.client`` cost ~4x the CPU per request). While a POST is in flight new messages
  accumulate, so batching grows with load.
- The answer to a POST may carry the peer's own messages for us (``{"messages": [...]}``: the
  replies its driver produced while handling our batch); they are decoded and handed to
  ``consumer.deliver``. So a leader gets its followers' acknowledgements without a second HTTP
  request in the other direction.
- Failures (connect refused, timeout, non-2xx) drop that batch, close the connection and back off
  exponentially (``backoff_min`` .. ``backoff_max``). Every reconnect opens a new socket and
  resolves the host name again (``socket.create_connection``; no DNS cache in the process), so a
  pod recreated with a new IP is found on the next attempt.
- ``stop()`` ends the senders (queued messages are dropped).

Inbound: the HTTP edge hands the POST's body to ``receive_post(consumer, self_id, length,
stream)``, which checks the size, parses the JSON, decodes and validates every message
(``decode_batch``: codec.py, and each must be addressed to ``self_id``), calls
``consumer.deliver_and_reply`` and returns the response body with the encoded replies.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, Protocol

from raftkv.errors import MalformedRaftMessage, PayloadTooLarge
from raftkv.raft import Message, MessageDecodeError, decode_message, encode_message
from raftkv.server.httpconn import KeepAliveConnection
from raftkv.server.waiters import Waiter

__all__ = [
    "MAX_RAFT_BODY",
    "RAFT_PATH",
    "REPLY_WAIT_S",
    "Consumer",
    "PeerSender",
    "PeerTransport",
    "decode_batch",
    "receive_post",
]

log = logging.getLogger(__name__)

RAFT_PATH = "/raft/v1/messages"
MAX_RAFT_BODY = 512 << 20
REPLY_WAIT_S = 2.0  # how long a Raft POST waits for the replies it triggers (normally one fsync)


class Consumer(Protocol):
    """Where the transport delivers what peers send us (the node driver)."""

    def deliver(self, msgs: Sequence[Message]) -> None:
        """Messages to step; nobody waits for an answer (replies to our own POSTs)."""

    def deliver_and_reply(self, msgs: Sequence[Message], timeout: float) -> list[Message]:
        """Messages from a peer's POST; returns the messages produced for that peer while
        handling them (persisted before they are handed over), to ride back on the response."""


def decode_batch(objs: Sequence[object], self_id: str) -> list[Message]:
    """Decode and validate a batch (codec.py); every message must be addressed to ``self_id``.
    MalformedRaftMessage (400) naming the first bad message."""
    out = []
    for i, obj in enumerate(objs):
        try:
            msg = decode_message(obj)
        except MessageDecodeError as err:
            raise MalformedRaftMessage(f"message {i}: {err}") from None
        if msg.dst != self_id:
            raise MalformedRaftMessage(
                f"message {i} is for {msg.dst!r}, but this node is {self_id!r}"
            )
        out.append(msg)
    return out


def receive_post(
    consumer: Consumer, self_id: str, length: int | None, stream: IO[bytes]
) -> dict[str, Any]:
    """``POST /raft/v1/messages`` (request thread): read and decode a peer's batch, deliver it,
    answer with our replies to it. PayloadTooLarge (413) / MalformedRaftMessage (400)."""
    if length is not None and length > MAX_RAFT_BODY:
        raise PayloadTooLarge(f"Raft message batch of {length} bytes is too large")
    body = stream.read(length) if length is not None else stream.read(MAX_RAFT_BODY + 1)
    if length is not None and len(body) != length:  # the peer went away mid-body
        raise MalformedRaftMessage(f"body truncated: got {len(body)} of {length} bytes")
    if len(body) > MAX_RAFT_BODY:
        raise PayloadTooLarge("Raft message batch is too large")
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting too deep
        raise MalformedRaftMessage(f"body is not JSON: {type(err).__name__}: {err}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise MalformedRaftMessage('body must be {"messages": [...]}')
    msgs = decode_batch(obj["messages"], self_id)
    replies = consumer.deliver_and_reply(msgs, REPLY_WAIT_S) if msgs else []
    return {
        "ok": True,
        "received": len(msgs),
        "messages": [encode_message(m) for m in replies],
    }


class PeerSender:
    """The queue and thread sending to one peer."""

    def __init__(
        self,
        peer_id: str,
        url: str,
        *,
        token: str | None = None,
        cluster_id: str | None = None,
        timeout: float = 2.0,
        max_queue: int = 4096,
        max_batch_bytes: int = 4 << 20,
        backoff_min: float = 0.05,
        backoff_max: float = 1.0,
        on_result: Callable[[str, bool, int], None] | None = None,
        on_reply: Callable[[str, list[Message]], None] | None = None,
        self_id: str | None = None,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.peer_id = peer_id
        self._on_reply = on_reply
        self._self_id = self_id
        self.url = url
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if cluster_id:  # the receiver refuses messages from another cluster (peer_gate.py)
            self._headers["X-Raftkv-Cluster-Id"] = cluster_id
        self._cluster_id = cluster_id
        if self_id:
            self._headers["X-Raftkv-Node"] = self_id
        self._timeout = timeout
        self._max_queue = max_queue
        self._max_batch_bytes = max_batch_bytes
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._on_result = on_result
        self._queue: deque[Message] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._stopped = False
        self._stop_evt = threading.Event()
        self._conn = KeepAliveConnection.for_url(url, timeout, ssl_context=ssl_context)
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

    def set_cluster_id(self, cluster_id: str) -> None:
        self._cluster_id = cluster_id
        self._headers = {**self._headers, "X-Raftkv-Cluster-Id": cluster_id}

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._stop_evt.set()
            self._queue.clear()
            self._cond.notify()
        self._thread.join(timeout)
        self._close()

    def enqueue(self, msgs: Iterable[Message]) -> None:
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
    def _take(self) -> list[Message] | None:
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

    def _post_all(self, batch: list[Message]) -> bool:
        chunk: list[dict[str, Any]] = []
        size = 0
        for msg in batch:
            try:
                obj = encode_message(msg)
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
                if status == 409 and b"cluster_id_mismatch" in data:
                    if status != self._last_rejection:
                        log.error(
                            "peer=%s event=cluster-id-mismatch cluster_id=%s url=%s "
                            "reply=%s: the peer belongs to another cluster; not talking to it",
                            self.peer_id,
                            self._cluster_id,
                            self.url,
                            data[:200].decode("utf-8", "replace"),
                        )
                elif status != self._last_rejection:  # once per kind, not per heartbeat
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
                self._hand_over_replies(data)
            return True
        return False

    def _hand_over_replies(self, data: bytes) -> None:
        """The peer answered our POST with messages for us: decode them, hand them over."""
        assert self._on_reply is not None
        try:
            objs = json.loads(data)["messages"]
            if not isinstance(objs, list):
                raise MalformedRaftMessage('"messages" is not a list')
            msgs = decode_batch(objs, self._self_id) if self._self_id else []
        except (ValueError, KeyError, TypeError, RecursionError, MalformedRaftMessage) as err:
            log.warning(
                "peer=%s event=bad-peer-reply error=%s body=%s", self.peer_id, err, data[:200]
            )
            return
        if msgs:
            self._on_reply(self.peer_id, msgs)


class PeerTransport:
    """One ``PeerSender`` per peer other than ``self_id``; replies go to ``consumer``."""

    def __init__(
        self,
        self_id: str,
        peer_urls: Mapping[str, str],
        consumer: Consumer,
        *,
        token: str | None = None,
        cluster_id: str | None = None,
        timeout: float = 2.0,
        on_result: Callable[[str, bool, int], None] | None = None,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.self_id = self_id
        self._consumer = consumer
        self._opts: dict[str, Any] = {
            "token": token,
            "cluster_id": cluster_id,
            "timeout": timeout,
            "on_result": on_result,
            "on_reply": self._on_reply,
            "self_id": self_id,
            "ssl_context": ssl_context,
        }
        self.senders = {
            pid: self._make(pid, url) for pid, url in sorted(peer_urls.items()) if pid != self_id
        }
        # peer -> (its POST waiting for our answer, the messages for it gathered this pass)
        self._reply_slots: dict[str, tuple[Waiter[list[Message]], list[Message]]] = {}
        self._started = False

    def _make(self, peer_id: str, url: str) -> PeerSender:
        return PeerSender(peer_id, url, **self._opts)

    def _on_reply(self, peer: str, msgs: list[Message]) -> None:
        """Sender thread: a peer answered our POST with messages for us."""
        self._consumer.deliver(msgs)

    def url_of(self, peer_id: str) -> str | None:
        sender = self.senders.get(peer_id)
        return sender.url if sender is not None else None

    def set_cluster_id(self, cluster_id: str) -> None:
        """Carry ``cluster_id`` on every POST from now on (a joining node learned it)."""
        self._opts["cluster_id"] = cluster_id
        for sender in list(self.senders.values()):
            sender.set_cluster_id(cluster_id)

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

    # ------------------------------------------------------------------ driver thread
    def hold_replies(self, peer_id: str, waiter: Waiter[list[Message]]) -> None:
        """``peer_id``'s POST waits for our answer: until ``release_replies``, messages sent to
        it ride back on that POST's response. At most one POST per peer is in flight: an older
        one still held is answered with nothing."""
        old = self._reply_slots.get(peer_id)
        if old is not None:
            old[0].resolve([])
        self._reply_slots[peer_id] = (waiter, [])

    def release_replies(self) -> None:
        """End of the driver's pass: answer every held POST with what was gathered for it."""
        if self._reply_slots:
            for waiter, msgs in self._reply_slots.values():
                waiter.resolve(msgs)
            self._reply_slots.clear()

    def send(self, messages: Iterable[Message]) -> None:
        slots = self._reply_slots
        by_peer: dict[str, list[Message]] = {}
        for m in messages:
            slot = slots.get(m.dst) if slots else None
            if slot is not None:
                slot[1].append(m)
            else:
                by_peer.setdefault(m.dst, []).append(m)
        for dst, msgs in by_peer.items():
            sender = self.senders.get(dst)
            if sender is None:
                log.warning("peer=%s event=unknown-destination count=%d", dst, len(msgs))
                continue
            sender.enqueue(msgs)
