"""tls.py — the node's TLS contexts, reloaded from disk when the certificate files change.

One ``ReloadingContext`` per role, built from ``--tls-cert/--tls-key/--tls-ca`` (``--peer-mtls``):

* **server** (gunicorn, every accepted connection): the node's certificate; with a CA, clients
  *may* present a certificate (``CERT_OPTIONAL``: a bad one fails the handshake, none is fine for
  curl and probes), and ``--peer-mtls`` then requires a verified one on the Raft RPC and
  ``/v1/admin/*`` (auth.py). Its sockets are ``GuardedSSLSocket`` (worker.py deadlines).
* **client** (peer transport, leader forwarding): verifies peers against ``--tls-ca`` (the system
  store without one) with host-name checking; with ``--peer-mtls`` presents the node's
  certificate.

Reload: ``get()`` re-reads the files when their mtime/size changed (checked at most once a
second), so cert-manager renewing the Secret in place (kubelet swaps the mounted files) takes
effect for new connections without a restart; open connections keep their session. A half-written
or mismatched pair (a renewal caught mid-update) keeps the previous context and is logged; the
next check retries. gunicorn asks for the server context on every connection (its
``ssl_context`` hook), so this is the one place that decides.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable

from raftkv.config import NodeConfig
from raftkv.server.worker import _Deadlines

__all__ = ["GuardedSSLSocket", "ReloadingContext", "client_context", "server_context"]

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0


class GuardedSSLSocket(_Deadlines, ssl.SSLSocket):
    """A server-side TLS socket with the worker's read deadlines."""


Stamp = tuple[tuple[int, int], ...]


class ReloadingContext:
    """An ``ssl.SSLContext`` rebuilt by ``build()`` whenever one of ``paths`` changes."""

    def __init__(self, build: Callable[[], ssl.SSLContext], paths: list[str], what: str) -> None:
        self._build = build
        self._paths = paths
        self._what = what
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._stamp = self._read_stamp()
        self._ctx = build()  # at start a bad file is fatal (one clear error), later it is not
        self.reloads = 0

    def _read_stamp(self) -> Stamp:
        out = []
        for p in self._paths:
            try:
                st = os.stat(p)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((-1, -1))
        return tuple(out)

    def get(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < CHECK_INTERVAL_S:
            return self._ctx
        with self._lock:
            if now - self._checked < CHECK_INTERVAL_S:
                return self._ctx
            self._checked = now
            stamp = self._read_stamp()
            if stamp != self._stamp:
                try:
                    ctx = self._build()
                except (OSError, ssl.SSLError, ValueError) as err:
                    log.warning(
                        "event=tls-reload-failed context=%s error=%s: %s",
                        self._what,
                        type(err).__name__,
                        err,
                    )
                else:
                    self._ctx, self._stamp = ctx, stamp
                    self.reloads += 1
                    log.info("event=tls-reloaded context=%s", self._what)
        return self._ctx


def _paths(cfg: NodeConfig) -> list[str]:
    return [p for p in (cfg.tls_cert, cfg.tls_key, cfg.tls_ca) if p]


def server_context(cfg: NodeConfig) -> ReloadingContext:
    assert cfg.tls_cert and cfg.tls_key

    def build() -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)  # type: ignore[arg-type]
        if cfg.tls_ca:
            ctx.load_verify_locations(cafile=cfg.tls_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.sslsocket_class = GuardedSSLSocket
        return ctx

    return ReloadingContext(build, _paths(cfg), "server")


def client_context(cfg: NodeConfig) -> ReloadingContext:
    def build() -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=cfg.tls_ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cfg.peer_mtls and cfg.tls_cert and cfg.tls_key:
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        return ctx

    return ReloadingContext(build, _paths(cfg), "client")
