"""Forwarder against a scripted raw-socket "leader": what is sent, what a failure tells the
client (503 never sent / 504 outcome unknown), what is re-sent, and that any failure leaves the
next forward working (issues 10 and 13)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from raftkv.errors import NoLeader, OutcomeUnknown
from raftkv.server import forward as forward_mod
from raftkv.server.forward import FORWARDED_HEADER, Forwarder
from raftkv.server.keypath import forward_target

OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Raft-Leader: n1\r\n"
    b'Content-Length: 11\r\n\r\n{"ok":true}'
)

# What the scripted leader does with the n-th request it reads: answer these bytes, or one of
# the actions below.
CLOSE = "close"  # close the connection without a byte of answer (after reading the request)
HANG = "hang"  # never answer (until the test ends)
Action = bytes | str | tuple[bytes, str]


def then_close(response: bytes) -> tuple[bytes, str]:
    """Answer normally (keep-alive), then close the idle connection."""
    return response, CLOSE


class ScriptedLeader:
    def __init__(self, script: list[Action]) -> None:
        self.script = list(script)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                with self.lock:
                    self.requests.append(head + f.read(length))
                    action = self.script.pop(0) if self.script else OK
                if action == CLOSE:
                    return
                if action == HANG:
                    self.stop.wait(10)
                    return
                if isinstance(action, tuple):
                    conn.sendall(action[0])
                    return
                assert isinstance(action, bytes)
                conn.sendall(action)
                if b"Connection: close" in action:
                    return

    def close(self) -> None:
        """Stop listening now (shutdown wakes the blocked accept; a bare close would not, and the
        kernel would keep accepting on the still-referenced socket)."""
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def leader() -> Iterator[Callable[..., ScriptedLeader]]:
    made: list[ScriptedLeader] = []

    def make(*script: Action) -> ScriptedLeader:
        s = ScriptedLeader(list(script))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def fwd_to(s: ScriptedLeader, timeout: float = 2.0) -> Forwarder:
    return Forwarder(
        "n0", {"n0": "http://127.0.0.1:1", "n1": f"http://127.0.0.1:{s.port}"}, timeout=timeout
    )


def put(f: Forwarder, target: str = "/v1/kv/k", request_id: str | None = None) -> Any:
    headers = {"Content-Type": "text/plain"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return f.forward("n1", "PUT", target, headers, b"v")


def get(f: Forwarder, target: str = "/v1/kv/k") -> Any:
    return f.forward("n1", "GET", target, {}, b"")


def test_relays_the_target_byte_for_byte_and_keeps_the_connection(
    leader: Callable[..., ScriptedLeader],
) -> None:
    s = leader()
    f = fwd_to(s)
    status, headers, body = put(f, "/v1/kv/tag%23frag?prev_value=a%2Bb", "c:1")
    assert (status, body) == (200, b'{"ok":true}')
    assert ("X-Raft-Leader", "n1") in headers and ("Content-Type", "application/json") in headers
    get(f, "/v1/kv/%C3%BCn")
    assert s.requests[0].startswith(b"PUT /v1/kv/tag%23frag?prev_value=a%2Bb HTTP/1.1\r\n")
    assert b"X-Request-Id: c:1\r\n" in s.requests[0]
    assert f"{FORWARDED_HEADER}: n0\r\n".encode() in s.requests[0]
    assert s.requests[1].startswith(b"GET /v1/kv/%C3%BCn HTTP/1.1\r\n")
    assert s.connections == 1


def test_leader_closing_mid_response_is_unknown_outcome_then_next_forward_works(
    leader: Callable[..., ScriptedLeader],
) -> None:
    s = leader(b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 50\r\n\r\n{"key"')
    f = fwd_to(s)
    with pytest.raises(OutcomeUnknown) as err:
        put(f)
    assert err.value.status == 504 and err.value.code == "outcome_unknown"
    assert "may or may not have been applied" in str(err.value)
    assert len(s.requests) == 1  # a write without X-Request-Id is never re-sent
    assert put(f)[0] == 200  # the broken connection was dropped: a new one works
    assert s.connections == 2


def test_any_exception_drops_the_pooled_connection(
    leader: Callable[..., ScriptedLeader], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: a non-socket error (a UnicodeEncodeError then) left the pooled connection
    mid-request, and the next forward on that thread failed with CannotSendRequest."""
    s = leader(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}")
    f = fwd_to(s)
    with pytest.raises(OutcomeUnknown, match="answer was lost"):  # a malformed answer
        put(f)
    assert put(f)[0] == 200
    assert get(f)[0] == 200
    assert s.connections == 2

    # an exception that is not even an Exception still drops the connection
    real = forward_mod.KeepAliveConnection.request

    def interrupted(self: Any, *args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(forward_mod.KeepAliveConnection, "request", interrupted)
    with pytest.raises(KeyboardInterrupt):
        get(f)
    monkeypatch.setattr(forward_mod.KeepAliveConnection, "request", real)
    assert get(f)[0] == 200
    assert s.connections == 3


def test_reads_are_resent_after_a_reset_on_a_reused_connection(
    leader: Callable[..., ScriptedLeader],
) -> None:
    s = leader(OK, CLOSE)
    f = fwd_to(s)
    assert get(f)[0] == 200
    assert get(f)[0] == 200  # the second request met a closed connection: re-sent once
    assert len(s.requests) == 3 and s.connections == 2


def test_writes_with_a_request_id_are_resent_without_one_never(
    leader: Callable[..., ScriptedLeader],
) -> None:
    s = leader(OK, CLOSE, OK, OK, CLOSE)
    f = fwd_to(s)
    assert put(f, request_id="c:1")[0] == 200
    assert put(f, request_id="c:2")[0] == 200  # applied at most once by the leader: safe
    assert [r.count(b"X-Request-Id: c:2") for r in s.requests[1:3]] == [1, 1]
    assert put(f)[0] == 200
    with pytest.raises(OutcomeUnknown):
        put(f)  # reused connection, bytes went out, no request id: not re-sent
    assert len(s.requests) == 5 and s.connections == 2


def test_a_resent_write_that_cannot_connect_is_unknown_not_no_leader(
    leader: Callable[..., ScriptedLeader],
) -> None:
    """A leader SIGKILLed while it holds our request resets the connection and stops listening:
    the re-send cannot connect, yet the first attempt may have been proposed and committed by
    the next leader. Found by `raftctl verify --chaos` (a 503 no_leader for a write that was
    applied is a false "failed")."""
    s = leader(OK, CLOSE)
    f = fwd_to(s)
    assert put(f, request_id="c:1")[0] == 200
    real_request = forward_mod.KeepAliveConnection.request

    def dies_after_reading(self: Any, *args: Any) -> Any:
        try:
            return real_request(self, *args)
        finally:
            s.close()  # the leader is gone: no new connection will be accepted

    forward_mod.KeepAliveConnection.request = dies_after_reading  # type: ignore[method-assign]
    try:
        with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
            put(f, request_id="c:2")
    finally:
        forward_mod.KeepAliveConnection.request = real_request  # type: ignore[method-assign]
    assert sum(r.count(b"X-Request-Id: c:2") for r in s.requests) == 1


def _answer(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


NOT_LEADER = _answer(
    "503 Service Unavailable",
    b'{"code":"not_leader","error":"node n1 is not '
    b'the leader (request already forwarded once); retry"}',
)
NO_LEADER = _answer("503 Service Unavailable", b'{"code":"no_leader","error":"no leader"}')
SESSION_EXPIRED = _answer("409 Conflict", b'{"code":"session_expired","error":"expired"}')


@pytest.mark.parametrize(
    "second",
    [NOT_LEADER, NO_LEADER, SESSION_EXPIRED],
    ids=["not_leader", "no_leader", "session_expired"],
)
def test_a_resent_write_refused_by_a_restarted_leader_is_unknown_not_its_refusal(
    leader: Callable[..., ScriptedLeader],
    second: bytes,
) -> None:
    """The leader's worker dies holding our request (OOM kill, gunicorn's worker timeout): the
    connection is reset, but the master still listens, so the re-send connects and the new
    worker — a follower now, or a leader without our session — refuses it. That refusal is about
    the re-send only: the first attempt may have been proposed and committed, so relaying the
    503 (a definite "not applied") would be a false failure. Found by review after the
    cannot-connect case (0f98b20)."""
    s = leader(OK, CLOSE, second)
    f = fwd_to(s)
    assert put(f, request_id="c:1")[0] == 200
    with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
        put(f, request_id="c:2")
    assert sum(r.count(b"X-Request-Id: c:2") for r in s.requests) == 2
    assert s.connections == 2


def test_a_resent_write_answered_by_the_restarted_leader_passes_through(
    leader: Callable[..., ScriptedLeader],
) -> None:
    """200 (applied, or found in the exactly-once table) or 412 settles the write: relayed."""
    cas_failed = _answer("412 Precondition Failed", b'{"code":"precondition_failed"}')
    s = leader(OK, CLOSE, cas_failed, CLOSE, OK)
    f = fwd_to(s)
    assert put(f, request_id="c:1")[0] == 200
    assert put(f, request_id="c:2")[0] == 412
    assert put(f, request_id="c:3")[0] == 200


def test_an_admin_change_with_a_request_id_is_never_resent(
    leader: Callable[..., ScriptedLeader],
) -> None:
    """The node deduplicates KV writes by X-Request-Id, not membership or transfer requests: a
    re-sent removal that the first attempt already applied would come back 404 — a false
    failure. Found by review (raftctl's member calls)."""
    s = leader(OK, CLOSE)
    f = fwd_to(s)
    assert put(f, request_id="c:1")[0] == 200
    with pytest.raises(OutcomeUnknown):
        f.forward("n1", "DELETE", "/v1/admin/members/n2", {"X-Request-Id": "c:2"}, b"")
    assert len(s.requests) == 2 and s.connections == 1


def test_an_idle_connection_the_leader_closed_is_replaced_before_sending(
    leader: Callable[..., ScriptedLeader],
) -> None:
    # the leader answers, then closes the idle connection (gunicorn's keep-alive timeout)
    s = leader(then_close(OK))
    f = fwd_to(s)
    assert put(f)[0] == 200
    conn = f._pool()["n1"].conn
    for _ in range(200):
        if conn.peer_closed():
            break
        threading.Event().wait(0.01)
    assert conn.peer_closed()
    assert put(f)[0] == 200  # no OutcomeUnknown: the dead connection was never written to
    assert len(s.requests) == 2 and s.connections == 2


def test_timeout_after_sending_a_write_is_unknown_a_read_is_503(
    leader: Callable[..., ScriptedLeader],
) -> None:
    s = leader(HANG, HANG)
    f = fwd_to(s, timeout=0.3)
    with pytest.raises(OutcomeUnknown, match="TimeoutError"):
        put(f, request_id="c:1")  # a timeout is never re-sent, even with a request id
    with pytest.raises(NoLeader) as err:
        get(f)
    assert err.value.status == 503 and err.value.code == "no_leader"
    assert len(s.requests) == 2


def test_nothing_sent_is_no_leader() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    f = Forwarder("n0", {"n1": f"http://127.0.0.1:{port}"}, timeout=1.0)
    with pytest.raises(NoLeader, match="unreachable"):
        f.forward("n1", "PUT", "/v1/kv/k", {}, b"v")
    with pytest.raises(NoLeader):
        f.forward("n9", "PUT", "/v1/kv/k", {}, b"v")


@pytest.mark.parametrize(
    ("environ", "target"),
    [
        ({"RAW_URI": "/v1/kv/tag%23frag", "PATH_INFO": "/v1/kv/tag#frag"}, "/v1/kv/tag%23frag"),
        (
            {"RAW_URI": "/v1/kv/pct%2541?prev_value=x", "PATH_INFO": "/v1/kv/pct%41"},
            "/v1/kv/pct%2541?prev_value=x",
        ),
        ({"REQUEST_URI": "/v1/kv/q%3Fx"}, "/v1/kv/q%3Fx"),
        # raw UTF-8 bytes in the target (WSGI: one char per byte) -> the same key, ASCII
        ({"RAW_URI": "/v1/kv/\xc3\xbcn"}, "/v1/kv/%C3%BCn"),
        ({"RAW_URI": "http://10.0.0.1:8000/v1/kv/a%2Fb?x=1"}, "/v1/kv/a%2Fb?x=1"),
        # no raw target: rebuilt from the decoded PATH_INFO with the codec's encoding
        (
            {"PATH_INFO": "/v1/kv/tag#frag", "QUERY_STRING": "prev_value=a%2Bb"},
            "/v1/kv/tag%23frag?prev_value=a%2Bb",
        ),
        ({"PATH_INFO": "/v1/kv/pct%41/\xc3\xbc"}, "/v1/kv/pct%2541/%C3%BC"),
    ],
)
def test_forward_target_is_the_raw_target(environ: dict[str, str], target: str) -> None:
    assert forward_target(environ) == target
    assert forward_target(environ).isascii()
