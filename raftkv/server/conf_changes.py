"""conf_changes.py — ``ConfChanges``: the driver's side of membership changes (docs/membership.md).

- ``propose(...)``: check a change against the cluster (members.py ``check_change``) and propose
  it on the leader; its waiter is answered when the CONFIG entry is applied (``applied``): the new
  configuration if the entry has the term it was proposed in, else ``ProposalLost``.
- ``sync(node, commit, transport)``: follow the configuration in effect (``membership``): log this
  node's role in it when it changes, and teach the transport new members' URLs (they travel in
  the configuration entries). Senders to removed members stay (the core stops sending to them once
  they hold their removal; the last heartbeat must still get there).

Driver thread only (``membership`` is read by other threads: an immutable value, replaced whole).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from raftkv.errors import ProposalLost, RaftkvError
from raftkv.raft import (
    ConfChange,
    ConfChangeRefused,
    Membership,
    NotLeader as CoreNotLeader,
    ProposalDropped,
    RaftNode,
    Role,
)
from raftkv.raft.membership import decode_change
from raftkv.server.members import MembershipConflict, check_change
from raftkv.server.transport import PeerTransport
from raftkv.server.waiters import Waiter

__all__ = ["ConfChanges"]

log = logging.getLogger(__name__)

_ROLE_HINTS = {
    "none": "joining: waiting to be added (POST /v1/admin/members), never campaigns",
    "learner": "learner: replicating, not voting until promoted",
    "voter": "voter",
    "removed": "removed from the cluster: never campaigns again",
}


class ConfChanges:
    def __init__(
        self,
        self_id: str,
        voters: tuple[str, ...],
        flag_urls: Mapping[str, str],
        not_leader: Callable[[str | None], RaftkvError],
    ) -> None:
        """``voters`` / ``flag_urls``: the flags' configuration (until the log has one)."""
        self._self_id = self_id
        self._flag_urls = flag_urls  # --peers: URLs of members the log does not name
        self._not_leader = not_leader
        self.membership = Membership(voters=voters)
        self._pending: dict[int, tuple[int, Waiter[Membership]]] = {}  # index -> (term, waiter)
        self._synced: tuple[int, bool] | None = None  # (config index, committed) last synced
        self._role = ""

    def propose(
        self,
        node: RaftNode,
        role: Role,
        leader: str | None,
        change: ConfChange,
        force: bool,
        waiter: Waiter[Membership],
        reachable: Callable[[str], bool],
    ) -> None:
        if role is not Role.LEADER:
            waiter.fail(self._not_leader(leader))
            return
        st = node.status()
        try:
            check_change(
                node.membership,
                change,
                leader_id=self._self_id,
                match=st.progress,
                last_index=st.last_log_index,
                reachable=reachable,
                force=force,
            )
            index = node.propose_conf_change(change)
        except RaftkvError as err:
            waiter.fail(err)
            return
        except CoreNotLeader as err:
            waiter.fail(self._not_leader(err.leader_hint))
            return
        except ProposalDropped:
            waiter.fail(MembershipConflict("a leadership transfer is in progress; retry"))
            return
        except ConfChangeRefused as err:
            waiter.fail(MembershipConflict(str(err)))
            return
        log.info("event=membership-change index=%d change=%s", index, change.describe())
        self._pending[index] = (st.term, waiter)

    def applied(self, index: int, term: int, data: bytes) -> None:
        """The CONFIG entry at ``index`` (of ``term``) was applied."""
        change, conf = decode_change(data, index)
        log.info(
            "event=membership-committed index=%d change=%s voters=%s learners=%s",
            index,
            change.describe(),
            ",".join(conf.voters),
            ",".join(conf.learners) or "-",
        )
        pending = self._pending.pop(index, None)
        if pending is None:
            return
        if pending[0] == term:
            pending[1].resolve(conf)
        else:
            pending[1].fail(
                ProposalLost(
                    "leadership changed before the membership change committed; it was not "
                    "applied (check GET /v1/members, then retry)"
                )
            )

    def sync(self, node: RaftNode, commit: int, transport: PeerTransport | None) -> None:
        """Follow the configuration in effect (see the module docstring)."""
        conf = node.membership
        self.membership = conf
        role = conf.role_of(self._self_id)
        if role != self._role:
            self._role = role
            log.info(
                "event=membership-role role=%s config_index=%d: %s",
                role,
                conf.index,
                _ROLE_HINTS[role],
            )
        if transport is None or (conf.index, commit >= conf.index) == self._synced:
            return
        self._synced = (conf.index, commit >= conf.index)
        for nid in conf.members:
            url = conf.url(nid) or self._flag_urls.get(nid)
            if url and nid != self._self_id:
                transport.set_peer(nid, url)
