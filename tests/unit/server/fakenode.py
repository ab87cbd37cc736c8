"""A fake ``NodeAPI`` for route tests: a real KV state machine, no Raft, scripted role/leader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftkv.config import NodeConfig, load_config
from raftkv.errors import MalformedRaftMessage, NotLeader, RaftkvError
from raftkv.kv import Command, KVStateMachine, Outcome, Result, encode_command
from raftkv.server.api import NodeStatus
from raftkv.server.changefeed import Change, ChangeFeed
from raftkv.server.metrics import NodeMetrics

PEERS = "n0=http://127.0.0.1:1,n1=http://127.0.0.1:2,n2=http://127.0.0.1:3"


class FakeNode:
    def __init__(self, config: NodeConfig | None = None, *, leader: str | None = "n0") -> None:
        self.config = config or load_config({"id": "n0", "peers": PEERS}, {}, "n0")
        self.sm = KVStateMachine()
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

    def decode_messages(self, objs: Sequence[Any]) -> list[Any]:
        for i, obj in enumerate(objs):
            if not isinstance(obj, dict) or obj.get("v") != 1:
                raise MalformedRaftMessage(f"message {i}: bad")
        return list(objs)

    def deliver(self, msgs: Sequence[Any]) -> None:
        self.delivered.extend(msgs)

    def deliver_and_reply(self, msgs: Sequence[Any], timeout: float) -> list[Any]:
        self.delivered.extend(msgs)
        return [{"v": 1, "reply_to": len(msgs)}]

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
