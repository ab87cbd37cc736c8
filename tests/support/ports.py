"""ports.py — loopback ports for test servers, reserved without the bind-close-reuse race.

The race: "bind port 0, read the number, close, give the number to a server" leaves a window in
which another process (a parallel test, a client's ephemeral port) can take the port, and a node
that is killed and restarted on its port reopens that window every time.

``ReservedPort()`` closes it: the test process binds a socket to a free port on 127.0.0.1 and keeps
it bound, never listening, until ``close()`` (``LocalCluster`` holds one per node for the cluster's
life). Meanwhile:

* the kernel hands that port to nobody else: not to ``bind(("127.0.0.1", 0))``, not as a client's
  ephemeral port, and a plain ``bind`` to it fails with EADDRINUSE;
* the server the test starts binds it for real, ``raftkv serve --port N`` (its own bind path, no
  fd passing): gunicorn sets SO_REUSEADDR on its listening socket, and Linux lets a SO_REUSEADDR
  socket bind a port that other SO_REUSEADDR sockets hold as long as none of them listens;
* a connection to the port is refused while no server listens on it, so a stopped node looks
  stopped (a held *listening* socket would queue the connections instead);
* a node killed and restarted binds the same port again, which stayed reserved in between.

This is Linux semantics (the test suite runs on Linux); on BSDs SO_REUSEADDR does not allow the
second bind.
"""

from __future__ import annotations

import socket
from types import TracebackType

__all__ = ["LOOPBACK", "ReservedPort"]

LOOPBACK = "127.0.0.1"


class ReservedPort:
    """A port on 127.0.0.1 held (bound with SO_REUSEADDR, not listening) until ``close()``."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReservedPort({self.port})"
