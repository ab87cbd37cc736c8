"""relay.py — ``Relay``: a follower hands a client request to the leader (forward.py does the
HTTP), or explains why it cannot.

One decision for every route that needs the leader (KV writes, linearizable reads, admin and
membership changes, backups): a request that was already forwarded once is never forwarded again
(``NotLeader``, 503); without a known leader that can be reached: ``NoLeader`` (503 +
``Retry-After``). ``forwarder`` may be replaced after the app is built (tests do).
"""

from __future__ import annotations

from flask import Response, request

from raftkv.errors import NoLeader, NotLeader
from raftkv.server.edge_node import EdgeNode
from raftkv.server.forward import FORWARDED_HEADER, Forwarder
from raftkv.server.keypath import forward_target
from raftkv.server.tls import client_context

__all__ = ["Relay"]


class Relay:
    def __init__(self, node: EdgeNode) -> None:
        cfg = node.config
        self.node = node
        self.forwarder = Forwarder(
            cfg.id,
            cfg.peer_urls,
            timeout=cfg.request_timeout + 1.0,
            ssl_context=client_context(cfg).get if cfg.tls else None,
        )
        # members added through the log are found by their URL in the configuration, so
        # forwarding reaches a leader that was not among the flags' peers
        self.forwarder.resolver = lambda pid: node.status().peer_urls.get(pid)
        self._forwarded = node.metrics.forwarded

    def check(self, leader: str | None, no_leader_hint: str = "") -> str:
        """The leader the current request may be relayed to; raises 503 when there is none."""
        if request.headers.get(FORWARDED_HEADER) is not None:
            raise NotLeader(
                f"node {self.node.id} is not the leader (request already forwarded once); retry",
                leader=leader,
            )
        if not self.forwarder.can_forward_to(leader):
            raise NoLeader(
                f"no leader known (election in progress); retry{no_leader_hint}", leader=None
            )
        assert leader is not None
        return leader

    def forward_or_raise(self, leader: str | None) -> Response:
        """Relay the current request to ``leader`` as the client sent it, or raise 503."""
        leader = self.check(leader)
        body = request.get_data(cache=True)
        status, headers, data = self.forwarder.forward(
            leader, request.method, forward_target(request.environ), request.headers, body
        )
        self._forwarded.inc()
        return Response(data, status=status, headers=headers)

    def unless_leader(self) -> Response | None:
        """None on the leader; elsewhere the leader's answer to the current request."""
        st = self.node.status()
        if st.role == "leader":
            return None
        return self.forward_or_raise(st.leader)
