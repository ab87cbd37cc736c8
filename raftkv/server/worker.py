"""worker.py — gunicorn's gthread worker, hardened against slow and malformed clients.

gthread hands a connection to a pool thread as soon as its first byte arrives, and that thread then
reads the request with a blocking socket and no timeout. A client that sends a request one byte at
a time (slowloris), or a head and then no body, holds a thread for ever; a node has ``--threads``
of them, and the Raft RPC from its peers needs them too. ``RaftkvWorker`` bounds that damage:

* **Requests are assembled off-thread** (plain HTTP): a pool thread takes whatever bytes are
  already there without waiting, keeps them in the connection's parser buffer, and gives the
  connection back to the worker's poller until the head and (when its Content-Length is at most
  8 MiB: every KV request, every Raft batch but a big snapshot) the body are complete. A
  trickling client holds no thread at all, and is closed once ``HEAD_TIMEOUT_S`` has passed
  since its first byte.
* **Every blocking socket read has a deadline** (``GuardedSocket``; writes get the idle
  timeout): at most ``IDLE_TIMEOUT_S`` without progress, and the whole request must arrive within
  ``HEAD_TIMEOUT_S`` for the head (this also bounds a TLS handshake) plus, once the app has seen
  the head, ``BODY_BASE_S`` + Content-Length at ``MIN_BODY_RATE`` for the body
  (``extend_for_body``, called by the app's WSGI edge). A client that stalls gets its connection
  closed (the app answers 408 when it was reading the body).
* **Errors gunicorn answers itself** (a head over the size limits, a malformed request line)
  are JSON like every other raftkv error, not gunicorn's HTML page.

Everything else is gthread's own code: keep-alive, the thread pool, graceful shutdown.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import struct
import time
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

__all__ = [
    "BODY_BASE_S",
    "HEAD_TIMEOUT_S",
    "IDLE_TIMEOUT_S",
    "MIN_BODY_RATE",
    "GuardedSocket",
    "RaftkvWorker",
    "extend_for_body",
]

# RAFTKV_CLIENT_TIMEOUT_S (default 10) sets all three (tests use a short one).
_CLIENT_TIMEOUT_S = float(os.environ.get("RAFTKV_CLIENT_TIMEOUT_S", "10"))
IDLE_TIMEOUT_S = _CLIENT_TIMEOUT_S
HEAD_TIMEOUT_S = _CLIENT_TIMEOUT_S
BODY_BASE_S = _CLIENT_TIMEOUT_S
MIN_BODY_RATE = 1 << 20  # bytes/s a large body must at least arrive at
_MAX_GATHER = 8 << 20  # heads and bodies up to this size are assembled off-thread


class ClientTooSlow(ConnectionResetError):
    """A client missed its deadline. A ConnectionResetError (ECONNRESET), so gunicorn closes the
    connection quietly instead of logging a traceback per slow client."""

    def __init__(self, why: str) -> None:
        super().__init__(errno.ECONNRESET, why)


class _Deadlines:
    """Mixin for socket classes: blocking calls get min(idle timeout, time left)."""

    deadline: float | None = None
    idle: float = IDLE_TIMEOUT_S
    timed_out: bool = False

    def setblocking(self, flag: bool) -> None:
        if flag:  # gthread: "a pool thread starts on this connection" -> a new request
            self.deadline = time.monotonic() + HEAD_TIMEOUT_S
            super().settimeout(self.idle)  # type: ignore[misc]
        else:
            self.deadline = None
            super().setblocking(False)  # type: ignore[misc]

    def settimeout(self, value: float | None) -> None:
        self.deadline = None  # an explicit timeout (e.g. gunicorn's lingering close) wins
        super().settimeout(value)  # type: ignore[misc]

    def _arm(self) -> None:
        d = self.deadline
        if d is None:
            return
        left = d - time.monotonic()
        if left >= self.idle:  # the idle timeout set by setblocking(True) is the tighter bound
            return
        if super().gettimeout() == 0.0:  # type: ignore[misc]
            return  # non-blocking (in the poller): nothing to bound
        if left <= 0:
            self.timed_out = True
            raise ClientTooSlow("client too slow: request not received in time")
        super().settimeout(left)  # type: ignore[misc]

    def recv(self, *args: Any) -> bytes:
        self._arm()
        try:
            return super().recv(*args)  # type: ignore[misc, no-any-return]
        except TimeoutError:
            self.timed_out = True
            raise ClientTooSlow("client too slow: nothing received within the timeout") from None

    def recv_into(self, *args: Any) -> int:
        self._arm()
        try:
            return super().recv_into(*args)  # type: ignore[misc, no-any-return]
        except TimeoutError:
            self.timed_out = True
            raise ClientTooSlow("client too slow: nothing received within the timeout") from None


class GuardedSocket(_Deadlines, socket.socket):
    """An accepted client socket with read deadlines (see the module docstring)."""

    __slots__ = ("deadline",)

    @classmethod
    def adopt(cls, sock: socket.socket) -> GuardedSocket:
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())


def abort(sock: socket.socket) -> None:
    """Throw a client out: shut the socket down and make its close a reset, so that gthread's
    own (graceful) close, which follows, neither lingers — it does so in the worker's main
    thread, up to 2 s per connection — nor finds a closed socket (its connection count)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_SMALL_BODY = 64 << 10


def extend_for_body(sock: Any, content_length: int | None, chunked: bool = False) -> None:
    """Called by the app once the head is parsed: the body may take BODY_BASE_S plus its size at
    MIN_BODY_RATE (a snapshot install can be large). No-op for sockets of other servers, and for
    a small plain-HTTP body of known length (the worker assembled it off-thread with the head,
    or, after ``Expect: 100-continue``, it is small enough for the head's deadline): this saved
    two socket calls on every KV request."""
    if type(sock) is GuardedSocket and not chunked and (content_length or 0) <= _SMALL_BODY:
        return
    if isinstance(sock, _Deadlines) and isinstance(sock, socket.socket):
        sock.deadline = time.monotonic() + BODY_BASE_S + (content_length or 0) / MIN_BODY_RATE
        if socket.socket.gettimeout(sock) != 0.0:
            socket.socket.settimeout(sock, sock.idle)  # undo a timeout lowered near the head's end


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Replacement for gunicorn.util.write_error: the same answer, as raftkv's JSON error."""
    code = reason.lower().replace(" ", "_") or "bad_request"
    body = json.dumps({"error": mesg or reason, "code": code}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


_EXPECT_RE = re.compile(rb"\r?\nexpect:[ \t]*100-continue", re.IGNORECASE)
_CL_RE = re.compile(rb"\r?\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r?\n", re.IGNORECASE)


def _request_complete(held: bytes) -> bool:
    """True when ``held`` holds a whole request head and, for a body of known length up to
    ``_MAX_GATHER``, the whole body; or more than the limits (gunicorn then judges it)."""
    end = held.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = held.find(b"\n\n"), 2
    if end < 0:
        return len(held) >= _MAX_GATHER
    if _EXPECT_RE.search(held, 0, end + sep):
        return True  # the client waits for "100 Continue" (gunicorn sends it) before its body
    m = _CL_RE.search(held, 0, end + sep)
    if m is None:
        return True  # no body, or chunked: read by gthread under the socket deadlines
    length = int(m.group(1))
    return length > _MAX_GATHER or len(held) >= end + sep + length


class RaftkvWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with head assembly off-thread, socket deadlines and JSON errors."""

    def init_process(self) -> None:
        gunicorn_util.write_error = write_json_error  # this process only serves raftkv
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        sock = GuardedSocket.adopt(client_sock)
        sock.setblocking(True)
        conn = TConn(self.cfg, sock, client_addr, listener.getsockname())
        self.enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        if not self.cfg.is_ssl:
            verdict = self._gather_request(conn)
            if verdict is not None:
                return verdict
        elif not conn.initialized:
            # TLS: handshake here, under the raw socket's deadline, so that gthread's
            # setblocking(True) then lands on the TLS socket and arms its deadline too
            if not conn.data_ready and not conn.wait_for_data(5.0):
                return _DEFER
            conn.data_ready = True
            conn.sock.setblocking(True)
            try:
                conn.init()
            except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
                self.log.debug("event=tls-handshake-failed client=%s error=%s", conn.client, err)
                abort(conn.sock)
                return False
        keep = super().handle(conn)
        if getattr(conn.sock, "timed_out", False):  # gthread caught our ClientTooSlow
            self.log.warning("event=slow-client action=close client=%s", conn.client)
            abort(conn.sock)
            return False
        return keep

    def _gather_request(self, conn: Any) -> Any:
        """None when the head is complete (or cannot be judged here): gthread reads it then.
        Otherwise _DEFER (wait in the poller for more bytes) or False (close: too slow)."""
        if not conn.initialized:
            if not conn.data_ready and not conn.wait_for_data(5.0):
                return _DEFER
            conn.sock.setblocking(True)
            conn.init()  # plain HTTP: only builds the parser
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is None:
            return None
        held = unreader.buf.getvalue()
        if _request_complete(held):
            conn.__dict__.pop("raftkv_head_since", None)
            return None
        try:
            new = conn.sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            new = None
        except OSError:
            return None  # let gthread see the error and close
        if new == b"":
            return None  # EOF: gthread closes it
        if new:
            unreader.buf.seek(0, 2)
            unreader.buf.write(new)
            held += new
            if _request_complete(held):
                conn.__dict__.pop("raftkv_head_since", None)
                return None
        if not held:
            return None if new is None and conn.data_ready else _DEFER
        since = conn.__dict__.setdefault("raftkv_head_since", time.monotonic())
        if time.monotonic() - since > HEAD_TIMEOUT_S:
            self.log.warning("event=slow-client action=close client=%s", conn.client)
            abort(conn.sock)  # gthread's graceful close would linger on it in the main thread
            return False
        conn.data_ready = False
        return _DEFER
