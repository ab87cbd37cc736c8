"""KeepAliveConnection against a scripted raw-socket server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from raftkv.server.httpconn import KeepAliveConnection


class Scripted:
    """Accepts connections; answers the n-th request with responses[n] (raw bytes)."""

    def __init__(self, responses: list[bytes]) -> None:
        self.responses = list(responses)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.responses:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                f = conn.makefile("rb")
                while self.responses:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = f.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    self.requests.append(head + f.read(length))
                    resp = self.responses.pop(0)
                    conn.sendall(resp)
                    if b"Connection: close" in resp or resp == b"":
                        break


@pytest.fixture
def server() -> Iterator[type[Scripted]]:
    made: list[Scripted] = []

    class Made(Scripted):
        def __init__(self, responses: list[bytes]) -> None:
            super().__init__(responses)
            made.append(self)

    yield Made
    for s in made:
        s.sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_keep_alive_reuse_and_request_bytes(server: type[Scripted]) -> None:
    s = server([OK, OK])
    c = KeepAliveConnection("127.0.0.1", s.port, 2)
    assert c.request("POST", "/p", b"abc", {"X-A": "1"}, 2) == (
        200,
        {"content-type": "application/json", "content-length": "2"},
        b"{}",
    )
    assert c.is_open
    assert c.request("POST", "/p", b"", {}, 2)[0] == 200
    assert s.connections == 1
    first = s.requests[0]
    assert first.startswith(b"POST /p HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-A: 1\r\n" in first and b"Content-Length: 3\r\n\r\nabc" in first
    c.close()


def test_chunked_and_connection_close(server: type[Scripted]) -> None:
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    )
    s = server([chunked])
    c = KeepAliveConnection("127.0.0.1", s.port, 2)
    status, headers, body = c.request("GET", "/", b"", {}, 2)
    assert (status, body) == (201, b"abcde") and headers["connection"] == "close"
    assert not c.is_open


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ],
)
def test_protocol_errors_raise_and_close(server: type[Scripted], bad: bytes) -> None:
    s = server([bad])
    c = KeepAliveConnection("127.0.0.1", s.port, 2)
    with pytest.raises(OSError):
        c.request("POST", "/", b"x", {}, 1)
    assert not c.is_open


def test_connection_refused_is_oserror() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        KeepAliveConnection("127.0.0.1", port, 1).request("POST", "/", b"", {}, 1)


def test_address_of_a_member_url() -> None:
    from raftkv.server.httpconn import Address, address_of

    assert address_of("http://raft-0.raft-service:8000") == Address(
        False, "raft-0.raft-service", 8000
    )
    assert address_of("https://[::1]/") == Address(True, "::1", 443)
    assert address_of("http://h") == Address(False, "h", 80)


def test_for_url_opens_tls_for_https_only() -> None:
    plain = KeepAliveConnection.for_url("http://127.0.0.1:9", 1.0)
    assert (plain.host, plain.port, plain.tls) == ("127.0.0.1", 9, False)
    secure = KeepAliveConnection.for_url("https://node:8443", 1.0)
    assert (secure.host, secure.port, secure.tls) == ("node", 8443, True)
    assert not plain.is_open and not secure.is_open  # opened lazily
