"""A fake ``NodeAPI`` for route tests: a real KV state machine, no Raft, scripted role/leader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftkv.config import NodeConfig, load_config
from raftkv.errors import NotLeader, RaftkvError
from raftkv.kv import Command, KVStateMachine, Outcome, Result, encode_command
from raftkv.raft import Heartbeat, HeartbeatResponse, Message, encode_message
from raftkv.server.api import NodeStatus
from raftkv.server.changefeed import Change, ChangeFeed
from raftkv.server.metrics import NodeMetrics

PEERS = "n0=http://127.0.0.1:1,n1=http://127.0.0.1:2,n2=http://127.0.0.1:3"


class FakeNode:
    def __init__(self, config: NodeConfig | None = None, *, leader: str | None = "n0") -> None:
        self.config = config or load_config({"id": "n0", "peers": PEERS}, {}, "n0")
        self.sm = KVStateMachine()
        self.cluster_id: str | None = "c0ffee"
        self.feed = ChangeFeed(self.config.watch_window)
        self.leader = leader
        self.term = 3
        self.metrics = NodeMetrics(self.config.id, self.status)
        self.draining = False
        self.started = True
        self.delivered: list[Any] = []
        self.proposed: list[Command] = []
        self.reads = 0
        self.fail_with: RaftkvError | None = None
        self.transferred: list[str | None] = []
        self.snapshots = 0

    def status(self) -> NodeStatus:
        return NodeStatus(
            id=self.config.id,
            role="leader" if self.leader == self.config.id else "follower",
            term=self.term,
            leader=self.leader,
            commit_index=self.sm.applied_index,
            last_applied=self.sm.applied_index,
            last_log_index=self.sm.applied_index,
            members=self.config.peer_ids,
        )

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if self.leader != self.config.id:
            raise NotLeader("not leader", leader=self.leader)

    def propose(self, cmd: Command, timeout: float) -> Result:
        self._check()
        self.proposed.append(cmd)
        with self.sm.lock:
            index = self.sm.applied_index + 1
            res = self.sm.apply(index, self.term, encode_command(cmd))
        if res.outcome is Outcome.OK and res.index == index:
            self.feed.publish([Change(index, res.key, res.value)], index)
        return res

    def read_barrier(self, timeout: float) -> int:
        self._check()
        self.reads += 1
        return self.sm.applied_index

    def deliver(self, msgs: Sequence[Message]) -> None:
        self.delivered.extend(msgs)

    def deliver_and_reply(self, msgs: Sequence[Message], timeout: float) -> list[Message]:
        """Records the batch (decoded and validated by the transport) and answers every
        heartbeat, like a follower would."""
        self.delivered.extend(msgs)
        return [
            HeartbeatResponse(src=m.dst, dst=m.src, term=m.term, context=m.context)
            for m in msgs
            if isinstance(m, Heartbeat)
        ]

    def transfer_leadership(self, target: str | None, timeout: float) -> str | None:
        self._check()
        self.transferred.append(target)
        self.leader = target or "n1"
        return self.leader

    def snapshot_now(self, timeout: float) -> int:
        self.snapshots += 1
        return self.sm.applied_index

    def start(self) -> None:
        self.started = True

    def begin_shutdown(self) -> None:
        self.draining = True

    def stop(self, timeout: float) -> None:
        self.started = False

    def set_cluster_id(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id


def raft_body(node: FakeNode, sender: str = "n1") -> dict[str, Any]:
    """A valid ``POST /raft/v1/messages`` body: one heartbeat from ``sender`` to ``node``."""
    hb = Heartbeat(src=sender, dst=node.config.id, term=node.term, commit=0)
    return {"messages": [encode_message(hb)]}
