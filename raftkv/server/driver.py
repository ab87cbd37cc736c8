"""driver.py — ``NodeDriver``: the thread that owns the Raft core, the storage and the KV machine.

The loop (etcd's raftexample ``serveChannels``, docs/contracts.md §1):

    wait until the next tick or new work (an Event set by request threads and the RPC route)
    tick the core for every tick period elapsed on the monotonic clock
    drain the inbox: peer messages -> step; ALL queued client proposals -> propose;
        admin requests; then ALL linearizable reads queued since the last round -> ONE read_index
        (a new round starts as soon as the previous one is confirmed)
    while the core has a Ready:
        snapshot -> storage.save_snapshot + restore the KV machine
        hard state + entries -> ONE storage.save (one fsync for the whole batch: group commit)
        messages -> transport (per-peer queues; never blocks)        [persist BEFORE send]
        committed entries -> apply; wake the proposal waiting at (index, term)
        read states -> wake reads once applied >= their index
        soft state -> log role/leader changes; fail reads on a lost leadership
        advance
    snapshot policy (snapshot_policy.py: entries AND log bytes since the last one relative to its
        size) -> copy the state under the lock, write it in the background (``raftkv-snapshot``
        thread, streaming), then storage.adopt_snapshot_file + node.compact on this thread

Snapshots travel as files, never as one message: the core's snapshot carries meta only (empty
data); an outgoing InstallSnapshot is handed to ``SnapshotSender`` (snapshot_stream.py: chunks,
flow control, resume) and a follower's ``SnapshotReceiver`` delivers an InstallSnapshot once the
file is complete; the Ready that installs it adopts the file and restores the KV machine from it
block by block (docs/storage.md).

Waiters: a request thread enqueues its work with a ``Waiter`` (waiters.py) and blocks on it; the
driver resolves it. A proposal is acknowledged only if the entry applied at its index has the term
it was proposed in; another term means it was overwritten (``ProposalLost``: definite). A proposal
outlives a leadership change: if its entry still commits (it reached a majority), it is
acknowledged. A snapshot installed over a pending proposal's index answers it from the restored
exactly-once table (when it carried an X-Request-Id), else ``OutcomeUnknown``.

A storage failure is fatal: it is logged, every waiter fails (``NodeFailed``; proposals already
in the log: ``OutcomeUnknown``, they may still commit), and ``on_fatal`` runs (under gunicorn it
exits the process with a non-zero code). ``stop()`` answers the same way (``ShuttingDown`` /
``OutcomeUnknown``).

Thread-safety: only the driver thread touches ``self._node`` and ``self._storage``. Other threads
call ``propose``/``read_barrier``/``deliver``/... which only append to the inbox (a deque) and set
the wake-up Event; ``status()`` returns an immutable snapshot refreshed by the driver.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftkv.config import NodeConfig
from raftkv.errors import (
    CommitTimeout,
    MalformedRaftMessage,
    NodeFailed,
    NoLeader,
    NotLeader,
    OutcomeUnknown,
    ProposalLost,
    RaftkvError,
    RequestIdConflict,
    RequestIdReused,
    ShuttingDown,
)
from raftkv.kv import Command, KVStateMachine, Outcome, Result, encode_command, fingerprint
from raftkv.raft import (
    ConfChange,
    ConfChangeRefused,
    Config as RaftConfig,
    Membership,
    MessageDecodeError,
    NotLeader as CoreNotLeader,
    ProposalDropped,
    RaftNode,
    Ready,
    RestoredState,
    Role,
    decode_message,
    encode_message,
)
from raftkv.raft.membership import decode_change
from raftkv.raft.messages import InstallSnapshot
from raftkv.raft.types import EntryKind, Snapshot, SnapshotMeta
from raftkv.server.api import NodeStatus
from raftkv.server.changefeed import Change, ChangeFeed
from raftkv.server.members import MembershipConflict, check_change
from raftkv.server.metrics import NodeMetrics
from raftkv.server.snapshot_policy import should_snapshot
from raftkv.server.snapshot_stream import SnapshotReceiver, SnapshotSender, staged_path
from raftkv.server.tls import client_context
from raftkv.server.transport import PeerTransport
from raftkv.server.waiters import Waiter
from raftkv.storage import Storage
from raftkv.storage.errors import StorageFailed
from raftkv.storage.snapshot import open_snapshot_data, snapshot_name, write_snapshot_stream

__all__ = ["NodeDriver"]

log = logging.getLogger(__name__)

SLOW_PASS_S = 0.2  # a driver pass longer than this is logged (heartbeats waited behind it)


@dataclass(slots=True)
class _Pending:
    term: int
    waiter: Waiter[Result]
    cmd: Command


@dataclass(slots=True)
class _Read:
    created: float
    index: int = -1  # -1 until the core released the ReadState
    waiters: list[Waiter[int]] = field(default_factory=list)


class NodeDriver:
    """Runs one Raft node (see module docstring). ``start()`` in the gunicorn worker only."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        on_fatal: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.cluster_id: str | None = None  # set by create_app (raftkv.identity)
        self.sm = KVStateMachine()
        self.feed = ChangeFeed(config.watch_window)  # watches read it; fed by _apply
        self._status = NodeStatus(id=config.id, members=config.peer_ids)
        self.metrics = NodeMetrics(config.id, self.status)
        self.metrics.watch_keys(self.sm.__len__)
        self._on_fatal = on_fatal
        self._clock = clock
        self._rng = rng or random.Random()
        self._inbox: deque[tuple[str, Any, Any]] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopping = False
        self._draining = False
        self._failed: BaseException | None = None
        self._node: RaftNode | None = None
        self._storage: Storage | None = None
        self._transport: PeerTransport | None = None
        self._pending: dict[int, _Pending] = {}
        self._reply_slots: dict[str, tuple[Waiter[list[Any]], list[Any]]] = {}
        # None: overwritten by a new leader (ProposalLost)
        self._wake_writes: list[tuple[Waiter[Result], Result | RaftkvError | None]] = []
        self._wake_reads: list[_Read] = []
        self._reads: dict[str, _Read] = {}  # rounds started, ReadState not yet released
        self._read_queue: deque[Waiter[int]] = deque()  # reads waiting for the next round
        self._reads_inflight = False
        self._ready_reads: list[_Read] = []
        self._read_seq = 0
        self._transfers: list[tuple[float, Waiter[str | None]]] = []
        self._role = Role.FOLLOWER
        self._saved_vote: tuple[int, str | None] = (0, None)  # the term and vote on disk
        self._leader: str | None = None
        self._snapshot_index = 0
        self._last_snapshot_applied = 0
        self._stopped_evt = threading.Event()
        self._handover_pending = False
        self._handover_deadline = 0.0
        self._shutdown_seen = threading.Event()
        self._snap_thread: threading.Thread | None = None  # a snapshot being written
        self._snap_waiters: list[Waiter[int]] = []  # snapshot_now callers
        self._log_bytes_since = 0  # bytes of entries applied since the last snapshot
        self._snap_bytes_at_start = 0
        self._pass_notes: list[str] = []  # what took time in this pass (slow-pass log line)
        self._last_snapshot_bytes = 0
        self._sender: SnapshotSender | None = None
        self.snapshot_receiver = SnapshotReceiver(
            config.id, lambda: self._storage.snap_dir if self._storage else None,
            lambda m: self.deliver([m]),
        )
        # membership (docs/membership.md)
        self._membership = Membership(voters=config.peer_ids)
        self._conf_pending: dict[int, tuple[int, Waiter[Membership]]] = {}
        self._peer_ok: dict[str, float] = {}  # peer -> monotonic time of its last answer
        self._synced_conf: tuple[int, bool] | None = None
        self._member_role = ""

    # ------------------------------------------------------------------ lifecycle
    @property
    def started(self) -> bool:
        return self._started and self._failed is None

    @property
    def draining(self) -> bool:
        return self._draining

    def start(self) -> None:
        """Open storage, recover, start the transport and the driver thread."""
        cfg = self.config
        storage = Storage.open(
            cfg.data_dir, lock_timeout=cfg.lock_timeout_s, snapshot_data=False
        )
        rec = storage.recovered
        snap: Snapshot | None = rec.snapshot
        if snap is not None:
            path = storage.snapshot_path()
            assert path is not None
            self._restore_file(path)
            self.sm.reset_applied(snap.meta.index, snap.meta.term)
            self._snapshot_index = snap.meta.index
            self._last_snapshot_applied = snap.meta.index
        self.feed.reset(self.sm.applied_index)
        raft_cfg = RaftConfig(
            id=cfg.id,
            peers=cfg.peer_ids,
            peer_urls=tuple(sorted(cfg.peer_urls.items())),
            election_tick=cfg.election_tick,
            heartbeat_tick=1,
            pre_vote=True,
            check_quorum=True,
        )
        self._node = RaftNode(
            raft_cfg,
            rng=self._rng,
            restored=RestoredState(
                hard_state=rec.hard_state, snapshot=snap, entries=tuple(rec.entries)
            ),
        )
        self._storage = storage
        self._saved_vote = (rec.hard_state.term, rec.hard_state.voted_for)
        self.metrics.watch_storage(lambda: self._storage.stats() if self._storage else None)
        conf = self._node.membership
        self._membership = conf
        if conf.index > 0 and set(conf.members) != set(cfg.peer_ids):
            # flags only bootstrap an empty cluster: from now on the log defines membership
            log.warning(
                "event=flags-ignored flags=%s members=%s config_index=%d: the persisted "
                "configuration decides membership (docs/membership.md)",
                ",".join(cfg.peer_ids), ",".join(conf.members), conf.index,
            )
        urls = dict(cfg.peer_urls)
        urls.update(conf.urls)
        self._transport = PeerTransport(
            cfg.id,
            urls,
            encode_message,
            token=cfg.token,
            cluster_id=self.cluster_id,
            timeout=max(1.0, cfg.election_ms / 1000.0),
            on_result=self._on_send_result,
            on_reply=self._on_peer_reply,
            ssl_context=client_context(cfg).get if cfg.tls else None,
        )
        self._sender = SnapshotSender(
            cfg.id,
            self._peer_url,
            token=cfg.token,
            chunk_bytes=cfg.snapshot_chunk_bytes,
            timeout=max(2.0, cfg.election_ms / 100.0),
            on_done=self._on_snapshot_sent,
            # the receiver refuses chunks from another cluster, like every Raft message
            extra_headers=lambda: (
                {"X-Raftkv-Cluster-Id": self.cluster_id} if self.cluster_id else {}
            ),
            ssl_context=client_context(cfg).get if cfg.tls else None,
        )
        self._refresh_status()
        log.info(
            "event=start term=%d commit=%d last_index=%d snapshot=%d members=%s",
            rec.hard_state.term,
            rec.hard_state.commit,
            rec.entries[-1].index if rec.entries else self._snapshot_index,
            self._snapshot_index,
            ",".join(cfg.peer_ids),
        )
        self._transport.start()
        self._thread = threading.Thread(target=self._run, name="raftkv-driver", daemon=True)
        self._started = True
        self._thread.start()

    def begin_shutdown(self) -> None:
        """Stop accepting writes; hand leadership over if we lead. Safe in a signal handler."""
        if self._draining:
            return
        self._draining = True
        self.feed.close()
        self._inbox.append(("shutdown", None, None))
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish shutdown: wait (bounded) for the leadership transfer, then stop everything."""
        self.begin_shutdown()
        deadline = time.monotonic() + timeout
        if self._thread is not None and self._thread.is_alive():
            # first let the driver take in the shutdown (it decides whether to hand over), then
            # keep it running (transport included) until the handover is done or abandoned
            self._shutdown_seen.wait(max(0.0, deadline - time.monotonic()))
            while time.monotonic() < deadline and self._handover_pending:
                if self._stopped_evt.wait(0.02):
                    break
            self._stopping = True
            self._wake.set()
            self._thread.join(max(0.1, deadline - time.monotonic()))
            if not self._thread.is_alive():
                self._fail_waiters(ShuttingDown(f"node {self.config.id} stopped; retry"))
        if self._transport is not None:
            self._transport.stop()
        if self._sender is not None:
            self._sender.stop()
        if self._snap_thread is not None:
            self._snap_thread.join(max(0.1, deadline - time.monotonic()))
        if self._storage is not None and (self._thread is None or not self._thread.is_alive()):
            self._storage.close()
            self._storage = None
        self._started = False
        log.info("event=stopped role=%s term=%d", self._status.role,
                 self._status.term)

    # ------------------------------------------------------------------ request-thread API
    def status(self) -> NodeStatus:
        return self._status

    def _submit(self, kind: str, payload: Any, waiter: Any) -> None:
        if self._failed is not None:
            raise NodeFailed(f"node {self.config.id} failed: {self._failed}")
        self._inbox.append((kind, payload, waiter))
        self._wake.set()

    def propose(self, cmd: Command, timeout: float) -> Result:
        if self._draining:
            raise ShuttingDown(f"node {self.config.id} is shutting down; retry on another node")
        waiter: Waiter[Result] = Waiter()
        self._submit("propose", (encode_command(cmd), cmd), waiter)
        if not waiter.wait(timeout):
            self.metrics.proposals.labels("timeout").inc()
            raise CommitTimeout(
                f"write not committed within {timeout:g}s (it may still be applied); retry with "
                "the same X-Request-Id to be safe"
            )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.value is not None
        return waiter.value

    def read_barrier(self, timeout: float) -> int:
        if self._failed is not None:
            raise NodeFailed(f"node {self.config.id} failed: {self._failed}")
        waiter: Waiter[int] = Waiter()
        self._read_queue.append(waiter)
        # While a confirmation round is in flight the driver starts the next one (for every
        # read queued meanwhile) as soon as it completes: no need to wake it per read.
        if not self._reads_inflight:
            self._wake.set()
        if not waiter.wait(timeout):
            self.metrics.reads.labels("timeout").inc()
            raise CommitTimeout(f"linearizable read not confirmed within {timeout:g}s; retry")
        if waiter.error is not None:
            raise waiter.error
        self.metrics.reads.labels("ok").inc()
        assert waiter.value is not None
        return waiter.value

    def decode_messages(self, objs: Sequence[Any]) -> list[Any]:
        out = []
        for i, obj in enumerate(objs):
            try:
                msg = decode_message(obj)
            except MessageDecodeError as err:
                raise MalformedRaftMessage(f"message {i}: {err}") from None
            if msg.dst != self.config.id:
                raise MalformedRaftMessage(
                    f"message {i} is for {msg.dst!r}, but this node is {self.config.id!r}"
                )
            out.append(msg)
        return out

    def deliver(self, msgs: Sequence[Any]) -> None:
        if msgs and self._failed is None:
            self._inbox.append(("msgs", msgs, None))
            self._wake.set()

    def deliver_and_reply(self, msgs: Sequence[Any], timeout: float) -> list[Any]:
        """Deliver a peer's batch and return, encoded, the messages our driver produced for that
        peer while handling it (persisted before they are handed over, like any send).

        The route answers the peer's POST with them, so acknowledgements ride back on the same
        HTTP exchange. Messages produced later (or after ``timeout``) go through the transport.
        """
        if not msgs or self._failed is not None:
            return []
        waiter: Waiter[list[Any]] = Waiter()
        self._inbox.append(("msgs", msgs, waiter))
        self._wake.set()
        if not waiter.wait(timeout) or waiter.value is None:
            return []
        return [encode_message(m) for m in waiter.value]

    def _on_peer_reply(self, peer: str, objs: list[Any]) -> None:
        """Sender thread: a peer answered our POST with messages for us."""
        self._peer_ok[peer] = time.monotonic()
        try:
            msgs = self.decode_messages(objs)
        except MalformedRaftMessage as err:
            log.warning("event=bad-peer-reply peer=%s error=%s", peer, err)
            return
        self.deliver(msgs)

    def transfer_leadership(self, target: str | None, timeout: float) -> str | None:
        waiter: Waiter[str | None] = Waiter()
        self._submit("transfer", target, waiter)
        if not waiter.wait(timeout):
            raise CommitTimeout(f"leadership transfer did not finish within {timeout:g}s")
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def receive_snapshot_chunk(self, headers: Any, body: bytes) -> dict[str, Any]:
        """``POST /raft/v1/snapshot`` (request thread): one chunk of a streamed snapshot."""
        if self._failed is not None:
            raise NodeFailed(f"node {self.config.id} failed: {self._failed}")
        return self.snapshot_receiver.chunk(headers, body)

    def _peer_url(self, peer: str) -> str | None:
        transport = self._transport
        sender = transport.senders.get(peer) if transport is not None else None
        return sender.url if sender is not None else self.config.peer_urls.get(peer)

    def _on_snapshot_sent(self, peer: str, meta: SnapshotMeta, ok: bool, seconds: float) -> None:
        """Sender thread: a transfer ended (ok: the follower holds the whole file)."""
        self.metrics.snapshot_transfers.labels("ok" if ok else "failed").inc()
        log.info("event=snapshot-transfer peer=%s index=%d ok=%s seconds=%.3f", peer,
                 meta.index, ok, seconds)

    def change_membership(self, change: ConfChange, force: bool, timeout: float) -> Membership:
        """Propose a membership change on the leader; the new configuration once it is committed
        and applied. MembershipConflict (409), MemberNotFound (404), NotLeader/NoLeader (503),
        CommitTimeout (504: outcome unknown)."""
        waiter: Waiter[Membership] = Waiter()
        self._submit("conf", (change, force), waiter)
        if not waiter.wait(timeout):
            raise CommitTimeout(
                f"membership change ({change.describe()}) not committed within {timeout:g}s: "
                "outcome unknown; check GET /v1/members before retrying"
            )
        if waiter.error is not None:
            raise waiter.error
        assert waiter.value is not None
        return waiter.value

    def membership(self) -> Membership:
        """The configuration in effect on this node (refreshed by the driver)."""
        return self._membership

    def peer_reachable(self, peer_id: str) -> bool:
        """Did ``peer_id`` answer us within the last election timeout? (The leader hears from
        every live peer once per heartbeat.)"""
        if peer_id == self.config.id:
            return self.started
        last = self._peer_ok.get(peer_id)
        return last is not None and time.monotonic() - last < self.config.election_ms / 1000

    def set_cluster_id(self, cluster_id: str) -> None:
        """A joining node learned its cluster's id (peer_gate.py): send it from now on."""
        self.cluster_id = cluster_id
        if self._transport is not None:
            self._transport.set_cluster_id(cluster_id)

    def snapshot_now(self, timeout: float) -> int:
        waiter: Waiter[int] = Waiter()
        self._submit("snapshot", None, waiter)
        if not waiter.wait(timeout):
            raise CommitTimeout(f"snapshot did not finish within {timeout:g}s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.value is not None
        return waiter.value

    # ------------------------------------------------------------------ driver thread
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as err:  # storage failure or core invariant: fatal
            self._fatal(err)
        finally:
            self._stopped_evt.set()

    def _loop(self) -> None:
        node = self._node
        assert node is not None
        tick = self.config.tick_seconds
        clock = self._clock
        next_tick = clock() + tick
        inbox = self._inbox
        wake = self._wake
        while not self._stopping:
            if not inbox:
                wake.wait(max(0.0, next_tick - clock()))
            wake.clear()
            t_pass = time.perf_counter()
            now = clock()
            if now >= next_tick:
                behind = int((now - next_tick) / tick) + 1
                # after a long stall (SIGSTOP, GC) do not fire a burst of ticks
                for _ in range(min(behind, 2)):
                    node.tick()
                next_tick = (next_tick + behind * tick) if behind <= 2 else now + tick
                self._expire_transfers(now)
                if self._reads:
                    self._expire_reads(now)
            if inbox:
                self._drain(node)
            while node.has_ready():
                self._handle_ready(node, node.ready())
            # reads: clear the in-flight flag BEFORE looking at the queue (read_barrier appends
            # before it looks at the flag), so a queued read is never left without a wake-up
            self._reads_inflight = bool(self._reads)
            while self._read_queue and not self._reads:
                self._start_read_round(node)
                self._reads_inflight = bool(self._reads)
                while node.has_ready():
                    self._handle_ready(node, node.ready())
                self._reads_inflight = bool(self._reads)
            if self._reply_slots:
                for waiter, msgs in self._reply_slots.values():
                    waiter.resolve(msgs)
                self._reply_slots.clear()
            self._refresh_status()  # before waking: a client sees its index in X-Raft-Index
            self._wake_waiters()
            if self._snap_thread is None and should_snapshot(
                self.sm.applied_index - self._last_snapshot_applied, self._log_bytes_since,
                self._last_snapshot_bytes, self.config.snapshot_every,
            ):
                self._start_snapshot(node)
            took = time.perf_counter() - t_pass
            self.metrics.observe_pass(took)
            if took > SLOW_PASS_S:
                log.warning("event=slow-driver-pass seconds=%.3f applied=%d %s", took,
                            self.sm.applied_index, " ".join(self._pass_notes))
            self._pass_notes.clear()

    def _drain(self, node: RaftNode) -> None:
        inbox = self._inbox
        term: int | None = None
        while inbox:
            kind, payload, waiter = inbox.popleft()
            if kind == "msgs":
                for msg in payload:
                    node.step(msg)
                term = None
                if waiter is not None:
                    src = payload[0].src
                    if src in self._reply_slots:  # at most one POST per peer is in flight
                        self._reply_slots[src][0].resolve([])
                    self._reply_slots[src] = (waiter, [])
            elif kind == "propose":
                data, cmd = payload
                try:
                    index = node.propose(data)
                except CoreNotLeader as err:
                    waiter.fail(self._not_leader(err.leader_hint))
                    continue
                except ProposalDropped:
                    waiter.fail(ProposalLost("leader is busy (leadership transfer); retry"))
                    continue
                if term is None:
                    term = node.status().term
                self._pending[index] = _Pending(term, waiter, cmd)
            elif kind == "transfer":
                self._start_transfer(node, payload, waiter)
            elif kind == "conf":
                self._start_conf_change(node, payload[0], payload[1], waiter)
            elif kind == "snapshot":
                self._snap_waiters.append(waiter)
                if self._snap_thread is None:
                    self._start_snapshot(node)
            elif kind == "snapshot-written":
                self._finish_snapshot(node, *payload)
            elif kind == "shutdown":
                if self._role is Role.LEADER and len(self.config.peers) > 1:
                    self._handover_pending = self._start_transfer(node, None, None)
                    self._handover_deadline = (
                        self._clock() + 3 * self.config.election_ms / 1000
                    )
                self._shutdown_seen.set()  # stop() may now rely on _handover_pending

    def _start_read_round(self, node: RaftNode) -> None:
        """ONE ReadIndex round for every linearizable read queued since the last one."""
        queue = self._read_queue
        reads: list[Waiter[int]] = []
        while queue:
            reads.append(queue.popleft())
        if not reads:
            return
        self._read_seq += 1
        rid = f"r{self._read_seq}"
        try:
            node.read_index(rid)
        except CoreNotLeader as err:
            e = self._not_leader(err.leader_hint)
            for w in reads:
                w.fail(e)
        else:
            self._reads[rid] = _Read(created=self._clock(), waiters=reads)

    def _start_conf_change(
        self, node: RaftNode, change: ConfChange, force: bool, waiter: Waiter[Membership]
    ) -> None:
        if self._role is not Role.LEADER:
            waiter.fail(self._not_leader(self._leader))
            return
        st = node.status()
        try:
            check_change(
                node.membership,
                change,
                leader_id=self.config.id,
                match=st.progress,
                last_index=st.last_log_index,
                reachable=self.peer_reachable,
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
        self._conf_pending[index] = (st.term, waiter)

    def _not_leader(self, hint: str | None) -> RaftkvError:
        if hint is None or hint == self.config.id:
            return NoLeader("no leader known (election in progress); retry")
        return NotLeader(f"node {self.config.id} is not the leader; leader is {hint}", leader=hint)

    def _handle_ready(self, node: RaftNode, rd: Ready) -> None:
        storage = self._storage
        assert storage is not None and self._transport is not None
        sm = self.sm
        if rd.snapshot is not None:
            snap = rd.snapshot
            t0 = time.perf_counter()
            staged = staged_path(storage.snap_dir, snap.meta)
            if not snap.data and os.path.exists(staged):  # streamed in (snapshot_stream.py)
                storage.adopt_snapshot_file(staged, snap.meta)
                path = storage.snapshot_path()
                assert path is not None
                self._restore_file(path)
            elif not snap.data:
                # the core accepted a streamed snapshot whose file is gone: never install an
                # empty state in its place; the node restarts from its disk (fatal)
                raise StorageFailed(f"streamed snapshot {snap.meta.index} has no file {staged}")
            else:
                storage.save_snapshot(snap)
                sm.restore(snap.data)
                self._last_snapshot_bytes = len(snap.data)
            sm.reset_applied(snap.meta.index, snap.meta.term)
            self._log_bytes_since = 0
            self._snapshot_index = snap.meta.index
            self._last_snapshot_applied = snap.meta.index
            self.feed.reset(snap.meta.index)
            for index in [i for i in self._pending if i <= snap.meta.index]:
                p = self._pending.pop(index)
                self._wake_writes.append((p.waiter, self._covered_by_snapshot(p.cmd, index)))
            took = time.perf_counter() - t0
            self._pass_notes.append(f"snapshot-install={took:.3f}s")
            log.info("event=snapshot-installed index=%d term=%d keys=%d seconds=%.3f",
                     snap.meta.index, snap.meta.term, len(sm), took)
        hs = rd.hard_state
        # A leader's messages promise nothing about its own disk (appends, heartbeats, read
        # answers; its term and vote were persisted before it led): it sends them BEFORE its
        # fsync, so followers write in parallel with it (thesis §10.2.1). Its own entries count
        # toward commit only through acknowledgements, which this thread handles after the save.
        early = bool(rd.messages) and (
            rd.soft_state[0] if rd.soft_state is not None else self._role
        ) is Role.LEADER and (hs is None or (hs.term, hs.voted_for) == self._saved_vote)
        if early:
            self._send(rd.messages)
        if rd.must_sync:  # the core decides (etcd's MustSync): a commit-only change waits
            t0 = time.perf_counter()
            storage.save(hs, rd.entries)
            if hs is not None:
                self._saved_vote = (hs.term, hs.voted_for)
            took = time.perf_counter() - t0
            self.metrics.fsync_seconds.observe(took)
            if took > SLOW_PASS_S / 2:
                self._pass_notes.append(f"save={took:.3f}s/{len(rd.entries)}")
            if rd.entries:
                self.metrics.batch_entries.observe(len(rd.entries))
        if rd.messages and not early:
            self._send(rd.messages)
        if rd.committed_entries:
            t0 = time.perf_counter()
            self._apply(rd)
            took = time.perf_counter() - t0
            if took > SLOW_PASS_S / 2:
                self._pass_notes.append(f"apply={took:.3f}s/{len(rd.committed_entries)}")
        for rs in rd.read_states:
            read = self._reads.pop(rs.request_id, None)
            if read is not None:
                read.index = rs.index
                self._ready_reads.append(read)
        if rd.soft_state is not None:
            self._on_soft_state(*rd.soft_state)
        node.advance(rd)
        if self._ready_reads:
            applied = sm.applied_index
            still = []
            for read in self._ready_reads:
                if read.index <= applied:
                    self._wake_reads.append(read)
                else:
                    still.append(read)
            self._ready_reads = still

    def _send(self, msgs: Sequence[Any]) -> None:
        """Hand a Ready's messages to the transport (or to the POST being answered)."""
        assert self._transport is not None
        if any(isinstance(m, InstallSnapshot) for m in msgs):
            msgs = self._stream_snapshots(msgs)
        slots = self._reply_slots
        if slots:
            rest = []
            for m in msgs:
                slot = slots.get(m.dst)
                if slot is not None:
                    slot[1].append(m)
                else:
                    rest.append(m)
            self._transport.send(rest)
        else:
            self._transport.send(msgs)

    def _apply(self, rd: Ready) -> None:
        sm = self.sm
        pending = self._pending
        done: list[tuple[Waiter[Result], Result | RaftkvError | None]] = []
        changes: list[Change] = []
        nbytes = 32 * len(rd.committed_entries)  # + the commands: the log's cost to replay
        with sm.lock:
            for e in rd.committed_entries:
                if e.index <= sm.applied_index:
                    continue  # already in the restored snapshot
                if e.kind is not EntryKind.NORMAL:  # NOOP, CONFIG: nothing for the KV machine
                    sm.apply_noop(e.index, e.term)
                    result = None
                    if e.kind is EntryKind.CONFIG:
                        self._config_applied(e.index, e.term, e.data)
                else:
                    nbytes += len(e.data)
                    result = sm.apply(e.index, e.term, e.data)
                    if result.outcome is Outcome.OK and result.index == e.index:
                        changes.append(Change(e.index, result.key, result.value))
                p = pending.pop(e.index, None) if pending else None
                if p is not None:
                    done.append((p.waiter, result if p.term == e.term else None))
        self._log_bytes_since += nbytes
        self.feed.publish(changes, sm.applied_index)
        self._wake_writes.extend(done)

    def _config_applied(self, index: int, term: int, data: bytes) -> None:
        change, conf = decode_change(data, index)
        log.info("event=membership-committed index=%d change=%s voters=%s learners=%s",
                 index, change.describe(), ",".join(conf.voters), ",".join(conf.learners) or "-")
        pending = self._conf_pending.pop(index, None)
        if pending is None:
            return
        if pending[0] == term:
            pending[1].resolve(conf)
        else:
            pending[1].fail(ProposalLost(
                "leadership changed before the membership change committed; it was not "
                "applied (check GET /v1/members, then retry)"
            ))

    def _sync_membership(self, node: RaftNode, commit: int) -> None:
        """Follow the configuration: the transport learns new members' URLs (they travel in the
        configuration entries). Senders to removed members stay (the core stops sending to
        them once they hold their removal; the last heartbeat must still get there)."""
        conf = node.membership
        self._membership = conf
        role = conf.role_of(self.config.id)
        if role != self._member_role:
            self._member_role = role
            hint = {
                "none": "joining: waiting to be added (POST /v1/admin/members), never campaigns",
                "learner": "learner: replicating, not voting until promoted",
                "voter": "voter",
                "removed": "removed from the cluster: never campaigns again",
            }[role]
            log.info("event=membership-role role=%s config_index=%d: %s", role, conf.index, hint)
        transport = self._transport
        if transport is None or (conf.index, commit >= conf.index) == self._synced_conf:
            return
        self._synced_conf = (conf.index, commit >= conf.index)
        for nid in conf.members:
            url = conf.url(nid) or self.config.peer_urls.get(nid)
            if url and nid != self.config.id:
                transport.set_peer(nid, url)

    def _wake_waiters(self) -> None:
        """Release the requests answered during this pass — at its very end, so the threads that
        wake do not compete for the GIL with the rest of the driver's pass."""
        done, self._wake_writes = self._wake_writes, []
        for waiter, res in done:
            if res is None:
                self.metrics.proposals.labels("lost").inc()
                waiter.fail(ProposalLost(
                    "overwritten by a new leader before it committed: not applied; retry"
                ))
            elif isinstance(res, RaftkvError):
                waiter.fail(res)
            else:
                waiter.resolve(res)
        reads, self._wake_reads = self._wake_reads, []
        for read in reads:
            for w in read.waiters:
                w.resolve(read.index)

    def _covered_by_snapshot(self, cmd: Command, index: int) -> Result | RaftkvError:
        """The answer for a write pending at ``index`` when a snapshot from the leader covers it.

        The entry at ``index`` is committed, but the snapshot does not say whether it is ours.
        The restored exactly-once table does, for a write with an X-Request-Id: recorded -> its
        result; not recorded (and still checkable) -> the entry is another write, ours is lost.
        """
        where = f"write at index {index} is covered by a snapshot installed from the leader"
        if cmd.client_id is None or cmd.seq is None:
            return OutcomeUnknown(
                f"{where}; whether it was applied is unknown (send X-Request-Id to make "
                "retries safe)"
            )
        try:
            recorded = self.sm.lookup_session(cmd.client_id, cmd.seq, fingerprint(cmd))
        except RequestIdReused as err:
            return err
        except RequestIdConflict as err:
            return OutcomeUnknown(f"{where}; whether it was applied is unknown: {err}")
        if recorded is None:
            return ProposalLost(f"{where}, and that entry is another write: not applied; retry")
        return recorded

    def _on_soft_state(self, role: Role, leader: str | None) -> None:
        if role is Role.CANDIDATE and self._role is not Role.CANDIDATE:
            self.metrics.elections.inc()
        if leader != self._leader:
            self.metrics.leader_changes.inc()
        was_leader = self._role is Role.LEADER
        self._role, self._leader = role, leader
        st = self._node.status() if self._node is not None else None
        log.info(
            "event=role-change role=%s leader=%s term=%d",
            role.value,
            leader,
            st.term if st else 0,
        )
        if not was_leader and self._reads:
            # a follower whose leader changed (or that now leads): the read indexes it asked the
            # old leader for will not come; ask again, the new leader (or, leading, itself).
            # The reads confirmed already stay valid: they only wait to be applied
            for read in self._reads.values():
                self._read_queue.extendleft(reversed(read.waiters))
            self._reads.clear()
        if was_leader and role is not Role.LEADER:
            err = self._not_leader(leader)
            for read in list(self._reads.values()) + self._ready_reads:
                for w in read.waiters:
                    w.fail(err)
            self._reads.clear()
            self._ready_reads = []
            while self._read_queue:
                self._read_queue.popleft().fail(err)
        if role is not Role.LEADER:
            self._handover_pending = False
        if self._transfers and role is not Role.LEADER:
            for _, tw in self._transfers:
                tw.resolve(leader)
            self._transfers = []

    def _start_transfer(
        self, node: RaftNode, target: str | None, waiter: Waiter[str | None] | None
    ) -> bool:
        """Ask the core to hand leadership over; True if a transfer is under way."""
        if self._role is not Role.LEADER:
            if waiter is not None:
                waiter.fail(self._not_leader(self._leader))
            return False
        try:
            chosen = node.transfer_leadership(target)
        except CoreNotLeader as err:
            if waiter is not None:
                waiter.fail(self._not_leader(err.leader_hint))
            return False
        except Exception as err:  # the core refused (e.g. no follower): report, don't die
            log.warning("event=transfer-leadership-refused error=%s", err)
            if waiter is not None:
                waiter.fail(NoLeader(f"leadership transfer refused: {err}"))
            return False
        log.info("event=transfer-leadership target=%s", chosen or target or "auto")
        if waiter is not None:
            self._transfers.append((self._clock() + 4 * self.config.election_ms / 1000, waiter))
        return True

    def _expire_reads(self, now: float) -> None:
        """Forget read rounds nobody can be waiting for any more (the request timed out). On a
        follower, a round the leader did not answer within an election timeout (the request or
        its answer was lost) is asked again: a later read index serves the same reads."""
        if self._role is not Role.LEADER:
            again = now - self.config.election_ms / 1000
            for rid in [rid for rid, r in self._reads.items() if r.created < again]:
                self._read_queue.extendleft(reversed(self._reads.pop(rid).waiters))
        horizon = now - 2 * self.config.request_timeout
        stale = [rid for rid, r in self._reads.items() if r.created < horizon]
        for rid in stale:
            for w in self._reads.pop(rid).waiters:
                w.fail(CommitTimeout("linearizable read was never confirmed; retry"))

    def _expire_transfers(self, now: float) -> None:
        if self._handover_pending and now >= self._handover_deadline:
            log.warning("event=handover-timeout still-leader=%s", self._role is Role.LEADER)
            self._handover_pending = False
        if not self._transfers:
            return
        keep = []
        for deadline, w in self._transfers:
            if now >= deadline:
                w.fail(CommitTimeout("leadership transfer did not complete; still the leader"))
            else:
                keep.append((deadline, w))
        self._transfers = keep

    def _stream_snapshots(self, msgs: Sequence[Any]) -> list[Any]:
        """Hand every InstallSnapshot to the snapshot sender (the file, in chunks); the rest
        goes through the transport."""
        rest = []
        storage, sender = self._storage, self._sender
        assert storage is not None and sender is not None
        for m in msgs:
            if isinstance(m, InstallSnapshot):
                meta = m.snapshot.meta
                path = os.path.join(storage.snap_dir, snapshot_name(meta.index, meta.term))
                sender.send(m.dst, meta, path, m.term)
            else:
                rest.append(m)
        return rest

    def _restore_file(self, path: str) -> None:
        """Restore the KV machine from a snapshot file, block by block."""
        layout, f = open_snapshot_data(path)
        with f:
            self.sm.restore_stream(f, layout.data_len)
        self._last_snapshot_bytes = layout.data_len

    def _start_snapshot(self, node: RaftNode) -> None:
        """Copy the state under the lock (the only pause of the driver) and write it in the
        background; ``_finish_snapshot`` runs on this thread when the file is written."""
        sm = self.sm
        storage = self._storage
        assert storage is not None
        t0 = time.perf_counter()
        with sm.lock:
            index, term = sm.applied_index, sm.applied_term
            if index <= self._snapshot_index:
                self._last_snapshot_applied = index
                self._log_bytes_since = 0
                self._resolve_snapshot_waiters(self._snapshot_index)
                return
            view = sm.snapshot_view()
        self._snap_bytes_at_start = self._log_bytes_since
        conf = node.membership_at(index)
        meta = SnapshotMeta(index=index, term=term, members=conf.voters, membership=conf)
        copy_s = time.perf_counter() - t0
        self._pass_notes.append(f"snapshot-copy={copy_s:.3f}s")
        snap_dir = storage.snap_dir

        def write() -> None:
            try:
                path, size = write_snapshot_stream(snap_dir, meta, view.write)
            except BaseException as err:  # reported to the driver: a storage failure is fatal
                self._inbox.append(("snapshot-written", (meta, None, 0, t0, copy_s, err), None))
            else:
                self._inbox.append(
                    ("snapshot-written", (meta, path, size, t0, copy_s, None), None)
                )
            self._wake.set()

        self._snap_thread = threading.Thread(target=write, name="raftkv-snapshot", daemon=True)
        self._snap_thread.start()

    def _finish_snapshot(
        self, node: RaftNode, meta: SnapshotMeta, path: str | None, size: int, t0: float,
        copy_s: float, err: BaseException | None,
    ) -> None:
        storage = self._storage
        assert storage is not None
        if self._snap_thread is not None:
            self._snap_thread.join()
            self._snap_thread = None
        if err is not None or path is None:
            raise StorageFailed(f"writing snapshot {meta.index} failed: {err}") from err
        t_adopt = time.perf_counter()
        adopted = storage.adopt_snapshot_file(path, meta)
        self._pass_notes.append(f"snapshot-adopt={time.perf_counter() - t_adopt:.3f}s")
        if adopted:
            node.compact(meta.index, b"")
            self._snapshot_index = meta.index
            self._last_snapshot_bytes = size
            self.metrics.snapshots.inc()
            self.metrics.snapshot_bytes.set(size)
            self.metrics.snapshot_seconds.observe(time.perf_counter() - t0)
            log.info(
                "event=snapshot index=%d term=%d bytes=%d seconds=%.3f copy_seconds=%.3f",
                meta.index, meta.term, size, time.perf_counter() - t0, copy_s,
            )
        self._last_snapshot_applied = max(self._last_snapshot_applied, meta.index)
        self._log_bytes_since = max(0, self._log_bytes_since - self._snap_bytes_at_start)
        self._resolve_snapshot_waiters(self._snapshot_index)
        self._refresh_status()

    def _resolve_snapshot_waiters(self, index: int) -> None:
        waiters, self._snap_waiters = self._snap_waiters, []
        for w in waiters:
            w.resolve(index)

    def _refresh_status(self) -> None:
        node = self._node
        if node is None:
            return
        st = node.status()
        self._sync_membership(node, st.commit_index)
        conf = self._membership
        urls = dict(self.config.peer_urls)
        urls.update(conf.urls)
        self._status = NodeStatus(
            id=st.id,
            role=st.role.value,
            term=st.term,
            leader=st.leader,
            commit_index=st.commit_index,
            last_applied=self.sm.applied_index,
            last_log_index=st.last_log_index,
            snapshot_index=max(st.snapshot_index, self._snapshot_index),
            members=tuple(st.members),
            progress=dict(st.progress),
            learners=tuple(conf.learners),
            config_index=conf.index,
            member_role=conf.role_of(self.config.id),
            peer_urls=urls,
        )

    def _on_send_result(self, peer: str, ok: bool, count: int) -> None:
        if ok:
            self._peer_ok[peer] = time.monotonic()
        else:
            self.metrics.peer_send_failures.labels(peer).inc()

    def _fatal(self, err: BaseException) -> None:
        self._failed = err
        self.feed.close()
        log.critical(
            "event=fatal error=%s: %s", type(err).__name__, err,
            exc_info=err,
        )
        self._fail_waiters(
            NodeFailed(f"node {self.config.id} failed: {type(err).__name__}: {err}")
        )
        if self._on_fatal is not None:
            self._on_fatal(err)

    def _fail_waiters(self, failure: RaftkvError) -> None:
        """Fail every waiter still pending (driver stopped or failed); those already answered
        during the last pass (their entries applied, their reads confirmed) get their answer."""
        self._wake_waiters()
        if self._pending:
            unknown = OutcomeUnknown(
                f"{failure} after the write was proposed: it may still be committed by another "
                "leader; retry with the same X-Request-Id to learn its outcome"
            )
            for p in self._pending.values():
                p.waiter.fail(unknown)
            self._pending.clear()
        for read in list(self._reads.values()) + self._ready_reads:
            for w in read.waiters:
                w.fail(failure)
        while self._read_queue:
            self._read_queue.popleft().fail(failure)
        while self._inbox:
            _, _, waiter = self._inbox.popleft()
            if waiter is not None:
                waiter.fail(failure)
        for _, tw in self._transfers:
            tw.fail(failure)
        self._transfers = []
        waiters, self._snap_waiters = self._snap_waiters, []
        for sw in waiters:
            sw.fail(failure)

