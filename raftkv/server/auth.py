"""auth.py — who may call what: THE access decision for every request (used by app.py's edge).

Three kinds of bearer tokens (``Authorization: Bearer <token>``), each a list so it can rotate
(docs/security.md: every node accepts all tokens of a list and sends the first):

* **cluster tokens** (``--token``): required on the Raft RPC (``/raft/``) and ``/v1/admin/*``
  when set; they also grant everything a client token grants (operators, raftctl).
* **read-write client tokens** (``--client-tokens``) and **read-only client tokens**
  (``--client-read-tokens``): when either list is set, the client data API (``/v1/kv``,
  ``/v1/watch``, ``/v1/members``) needs one; a read-only token may only GET (403 otherwise).
* Open whatever the settings: ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/status``,
  ``/openapi.json`` (probes and monitoring need no secret; they expose no data).

With ``--peer-mtls`` the Raft RPC also needs a client certificate the TLS layer verified against
``--tls-ca`` (the edge passes ``peer_verified``): peers present theirs. ``/v1/admin/*`` stays
token-only, so operators (raftctl, curl) need no client certificate. Tokens are compared in
constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from raftkv.config import NodeConfig
from raftkv.errors import Forbidden, RaftkvError, Unauthorized

__all__ = ["CLIENT_PREFIXES", "CLUSTER_PREFIXES", "Access"]

CLUSTER_PREFIXES = ("/raft/", "/v1/admin/")
PEER_PREFIX = "/raft/"
CLIENT_PREFIXES = ("/v1/kv", "/v1/watch", "/v1/members")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _encode(tokens: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(t.encode() for t in tokens)


def _matches(given: bytes, tokens: tuple[bytes, ...]) -> bool:
    found = False
    for t in tokens:  # no early exit: the time taken does not tell which token matched
        found |= hmac.compare_digest(given, t)
    return found


class Access:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cluster = _encode(cfg.cluster_tokens)
        self.rw = _encode(cfg.client_tokens)
        self.ro = _encode(cfg.client_read_tokens)
        self.client_auth = bool(self.rw or self.ro)
        self.peer_mtls = cfg.peer_mtls

    def check(
        self, method: str, path: str, authorization: str, peer_verified: bool = False
    ) -> RaftkvError | None:
        """None if the request may proceed, else the error to answer with (401/403)."""
        if path.startswith(CLUSTER_PREFIXES):
            if self.peer_mtls and not peer_verified and path.startswith(PEER_PREFIX):
                return Unauthorized(
                    "a client certificate signed by the cluster CA is required (--peer-mtls)"
                )
            if self.cluster and not _matches(_bearer(authorization), self.cluster):
                return Unauthorized("missing or wrong cluster token (Authorization: Bearer ...)")
            return None
        if not self.client_auth or not path.startswith(CLIENT_PREFIXES):
            return None
        given = _bearer(authorization)
        if not given:
            return Unauthorized("this API needs a client token (Authorization: Bearer ...)")
        if _matches(given, self.rw) or _matches(given, self.cluster):
            return None
        if _matches(given, self.ro):
            if method in _READ_METHODS:
                return None
            return Forbidden(f"a read-only token cannot {method} {path}")
        return Unauthorized("unknown client token")


def _bearer(authorization: str) -> bytes:
    if not authorization.startswith("Bearer "):
        return b""
    return authorization[7:].strip().encode("latin-1", "replace")
