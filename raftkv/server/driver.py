"""driver.py — ``NodeDriver``: the thread that owns the Raft core, the storage and the KV machine.

The loop (etcd's raftexample ``serveChannels``, docs/contracts.md §1):

    wait until the next tick or new work (an Event set by request threads and the RPC route)
    tick the core for every tick period elapsed on the monotonic clock
    drain the inbox (typed work items, work.py): peer messages -> step; ALL queued client
        proposals -> propose; admin requests; then ALL linearizable reads queued since the last
        pass -> ONE read_index (reads.py; the core's readonly.py batches: a round starts now, or
        with the next batch as soon as the one in flight is confirmed)
    while the core has a Ready:
        snapshot -> storage.save_snapshot + restore the KV machine
        if rd.must_sync (the core decides, etcd's MustSync): hard state + entries -> ONE
            storage.save (one fsync for the whole batch: group commit)
        messages -> transport (a reply to a waiting POST rides back on it, the rest goes to
            per-peer queues; never blocks)                         [persist BEFORE send]
        committed entries -> apply; wake the proposal waiting at (index, term)
        read states -> wake reads once applied >= their index
        soft state -> log role/leader changes; fail reads on a lost leadership
        advance
    snapshot policy (snapshot_policy.py: entries AND log bytes since the last one relative to its
        size) -> copy the state under the lock, write it in the background (``raftkv-snapshot``
        thread, streaming), then storage.adopt_snapshot_file + node.compact on this thread
        (snapshots.py)

Snapshots travel as files, never as one message: the core's snapshot carries meta only (empty
data); an outgoing InstallSnapshot is handed to ``SnapshotSender`` (snapshot_stream.py: chunks,
flow control, resume) and a follower's ``SnapshotReceiver`` delivers an InstallSnapshot once the
file is complete; the Ready that installs it adopts the file and restores the KV machine from it
block by block (docs/storage.md). Taking, installing and waiting for snapshots: snapshots.py.

Waiters: a request thread enqueues its work with a ``Waiter`` (waiters.py) and blocks on it; the
driver resolves it. Writes: proposals.py (acknowledged only if the entry applied at their index
has the term they were proposed in; a snapshot over a pending index answers from the restored
exactly-once table). Reads: reads.py. Leadership transfers and the shutdown handover:
handover.py. Membership changes and following the configuration: conf_changes.py. Peer
messages: transport.py (the driver is its ``Consumer``).

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
from typing import Any

from raftkv.config import NodeConfig
from raftkv.errors import (
    CommitTimeout,
    NodeFailed,
    NoLeader,
    NotLeader,
    ProposalLost,
    RaftkvError,
    ShuttingDown,
)
from raftkv.kv import Command, KVStateMachine, Outcome, Result, encode_command
from raftkv.raft import (
    ConfChange,
    Config as RaftConfig,
    Membership,
    Message,
    NotLeader as CoreNotLeader,
    ProposalDropped,
    RaftNode,
    Ready,
    RestoredState,
    Role,
)
from raftkv.raft.messages import InstallSnapshot
from raftkv.raft.types import EntryKind, Snapshot, SnapshotMeta
from raftkv.server.api import NodeStatus
from raftkv.server.changefeed import Change, ChangeFeed
from raftkv.server.conf_changes import ConfChanges
from raftkv.server.handover import Handover
from raftkv.server.metrics import NodeMetrics
from raftkv.server.proposals import Proposals
from raftkv.server.reads import LinearizableReads
from raftkv.server.snapshot_policy import SnapshotSchedule
from raftkv.server.snapshot_stream import SnapshotReceiver, SnapshotSender
from raftkv.server.snapshots import Snapshots
from raftkv.server.tls import client_context
from raftkv.server.transport import PeerTransport
from raftkv.server.waiters import Waiter
from raftkv.server.work import (
    WAITING,
    ChangeMembership,
    PeerMessages,
    Propose,
    Shutdown,
    SnapshotNow,
    SnapshotWritten,
    TransferLeadership,
    Work,
)
from raftkv.storage import Storage
from raftkv.storage.snapshot import snapshot_name

__all__ = ["NodeDriver"]

log = logging.getLogger(__name__)

SLOW_PASS_S = 0.2  # a driver pass longer than this is logged (heartbeats waited behind it)


class NodeDriver:
    """Runs one Raft node (see module docstring). ``start()`` in the gunicorn worker only."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        cluster_id: str | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sm: KVStateMachine | None = None,
    ) -> None:
        """``cluster_id``: recorded in the data dir (raftkv.identity; None: joining, not known
        yet). ``on_fatal``: runs once after a fatal error (under gunicorn: exit the worker).
        ``sm``: the KV machine to drive (default: an empty one; tests pass a smaller one)."""
        self.config = config
        self.cluster_id = cluster_id
        self.sm = sm if sm is not None else KVStateMachine()
        self.feed = ChangeFeed(config.watch_window)  # watches read it; fed by _apply
        self._status = NodeStatus(id=config.id, members=config.peer_ids)
        self.metrics = NodeMetrics(config.id, self.status)
        self.metrics.watch_keys(self.sm.__len__)
        self._on_fatal = on_fatal
        self._clock = clock
        self._rng = rng or random.Random()
        self._inbox: deque[Work] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopping = False
        self._draining = False
        self._failed: BaseException | None = None
        self._node: RaftNode | None = None
        self._storage: Storage | None = None
        self._transport: PeerTransport | None = None
        self._proposals = Proposals(self.metrics.proposals.labels("lost").inc)
        self._reads = LinearizableReads(clock, self._not_leader)
        self._handover = Handover(config.election_ms / 1000, clock, self._not_leader)
        self._role = Role.FOLLOWER
        self._saved_vote: tuple[int, str | None] = (0, None)  # the term and vote on disk
        self._leader: str | None = None
        self._snaps = SnapshotSchedule()
        self._stopped_evt = threading.Event()
        self._pass_notes: list[str] = []  # what took time in this pass (slow-pass log line)
        self._snapshots = Snapshots(
            self.sm, self._snaps, self.metrics, on_written=self._post, note=self._pass_notes.append
        )
        self._sender: SnapshotSender | None = None
        self.snapshot_receiver = SnapshotReceiver(
            config.id,
            lambda: self._storage.snap_dir if self._storage else None,
            lambda m: self.deliver([m]),
        )
        # membership (docs/membership.md)
        self._conf = ConfChanges(config.id, config.peer_ids, config.peer_urls, self._not_leader)
        self._peer_ok: dict[str, float] = {}  # peer -> monotonic time of its last answer

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
        storage = Storage.open(cfg.data_dir, lock_timeout=cfg.lock_timeout_s, snapshot_data=False)
        rec = storage.recovered
        snap: Snapshot | None = rec.snapshot
        if snap is not None:
            self._snapshots.recovered(storage, snap)
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
        self._conf.membership = conf
        if conf.index > 0 and set(conf.members) != set(cfg.peer_ids):
            # flags only bootstrap an empty cluster: from now on the log defines membership
            log.warning(
                "event=flags-ignored flags=%s members=%s config_index=%d: the persisted "
                "configuration decides membership (docs/membership.md)",
                ",".join(cfg.peer_ids),
                ",".join(conf.members),
                conf.index,
            )
        urls = dict(cfg.peer_urls)
        urls.update(conf.urls)
        self._transport = PeerTransport(
            cfg.id,
            urls,
            self,  # the Consumer: replies to our POSTs come back through ``deliver``
            token=cfg.token,
            cluster_id=self.cluster_id,
            timeout=max(1.0, cfg.election_ms / 1000.0),
            on_result=self._on_send_result,
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
            rec.entries[-1].index if rec.entries else self._snaps.index,
            self._snaps.index,
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
        self._inbox.append(Shutdown())
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish shutdown: wait (bounded) for the leadership transfer, then stop everything."""
        self.begin_shutdown()
        deadline = time.monotonic() + timeout
        if self._thread is not None and self._thread.is_alive():
            # first let the driver take in the shutdown (it decides whether to hand over), then
            # keep it running (transport included) until the handover is done or abandoned
            self._handover.shutdown_seen.wait(max(0.0, deadline - time.monotonic()))
            while time.monotonic() < deadline and self._handover.pending:
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
        self._snapshots.join(max(0.1, deadline - time.monotonic()))
        if self._storage is not None and (self._thread is None or not self._thread.is_alive()):
            self._storage.close()
            self._storage = None
        self._started = False
        log.info("event=stopped role=%s term=%d", self._status.role, self._status.term)

    # ------------------------------------------------------------------ request-thread API
    def status(self) -> NodeStatus:
        return self._status

    def _post(self, work: Work) -> None:
        """Queue work for the driver thread and wake it (the snapshot writer's result)."""
        self._inbox.append(work)
        self._wake.set()

    def _submit(self, work: Work) -> None:
        if self._failed is not None:
            raise NodeFailed(f"node {self.config.id} failed: {self._failed}")
        self._inbox.append(work)
        self._wake.set()

    def propose(self, cmd: Command, timeout: float) -> Result:
        if self._draining:
            raise ShuttingDown(f"node {self.config.id} is shutting down; retry on another node")
        waiter: Waiter[Result] = Waiter()
        self._submit(Propose(encode_command(cmd), cmd, waiter))
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
        # While a confirmation round is in flight its answer (or the next tick) wakes the
        # driver, which hands every read queued meanwhile over: no need to wake it per read.
        if self._reads.enqueue(waiter):
            self._wake.set()
        if not waiter.wait(timeout):
            self.metrics.reads.labels("timeout").inc()
            raise CommitTimeout(f"linearizable read not confirmed within {timeout:g}s; retry")
        if waiter.error is not None:
            raise waiter.error
        self.metrics.reads.labels("ok").inc()
        assert waiter.value is not None
        return waiter.value

    # ------------------------------------------------------------------ transport Consumer
    def deliver(self, msgs: Sequence[Message]) -> None:
        """Decoded messages to step (transport.py; nobody waits for an answer)."""
        if msgs and self._failed is None:
            self._inbox.append(PeerMessages(msgs))
            self._wake.set()

    def deliver_and_reply(self, msgs: Sequence[Message], timeout: float) -> list[Message]:
        """Deliver a peer's batch and return the messages our driver produced for that peer
        while handling it (persisted before they are handed over, like any send).

        The transport answers the peer's POST with them, so acknowledgements ride back on the
        same HTTP exchange. Messages produced later (or after ``timeout``) go through the
        transport's senders.
        """
        if not msgs or self._failed is not None:
            return []
        waiter: Waiter[list[Message]] = Waiter()
        self._inbox.append(PeerMessages(msgs, waiter))
        self._wake.set()
        if not waiter.wait(timeout) or waiter.value is None:
            return []
        return waiter.value

    def transfer_leadership(self, target: str | None, timeout: float) -> str | None:
        waiter: Waiter[str | None] = Waiter()
        self._submit(TransferLeadership(target, waiter))
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
        url = self._transport.url_of(peer) if self._transport is not None else None
        return url or self.config.peer_urls.get(peer)

    def _on_snapshot_sent(self, peer: str, meta: SnapshotMeta, ok: bool, seconds: float) -> None:
        """Sender thread: a transfer ended (ok: the follower holds the whole file)."""
        self.metrics.snapshot_transfers.labels("ok" if ok else "failed").inc()
        log.info(
            "event=snapshot-transfer peer=%s index=%d ok=%s seconds=%.3f",
            peer,
            meta.index,
            ok,
            seconds,
        )

    def change_membership(self, change: ConfChange, force: bool, timeout: float) -> Membership:
        """Propose a membership change on the leader; the new configuration once it is committed
        and applied. MembershipConflict (409), MemberNotFound (404), NotLeader/NoLeader (503),
        CommitTimeout (504: outcome unknown)."""
        waiter: Waiter[Membership] = Waiter()
        self._submit(ChangeMembership(change, force, waiter))
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
        return self._conf.membership

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
        self._submit(SnapshotNow(waiter))
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
        transport, storage = self._transport, self._storage
        assert transport is not None and storage is not None
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
                self._handover.expire(now, self._role is Role.LEADER)
                if self._reads.pending:
                    if self._role is not Role.LEADER:
                        # a follower's read index request (or its answer) lost on the way: a
                        # later read index serves the same reads
                        self._reads.ask_again(now - self.config.election_ms / 1000)
                    self._reads.expire(now - 2 * self.config.request_timeout)
            reads = self._reads
            if inbox:
                if reads.queued and reads.pending:
                    # a round is in flight: hand the reads queued meanwhile over BEFORE the peer
                    # messages, so the round its confirmation starts (readonly.py) takes them all
                    reads.start(node)
                self._drain(node)
            while node.has_ready():
                self._handle_ready(node, node.ready())
            # reads: refresh the in-flight flag BEFORE looking at the queue (read_barrier
            # appends before it looks at the flag), so a queued read is never left without a
            # wake-up; the core's readonly.py batches what is handed over (reads.py)
            reads.refresh_in_flight()
            while reads.queued:
                reads.start(node)
                while node.has_ready():
                    self._handle_ready(node, node.ready())
                reads.refresh_in_flight()
            transport.release_replies()
            self._refresh_status()  # before waking: a client sees its index in X-Raft-Index
            self._wake_waiters()
            self._snapshots.take_if_due(node, storage, self.config.snapshot_every)
            took = time.perf_counter() - t_pass
            self.metrics.observe_pass(took)
            if took > SLOW_PASS_S:
                log.warning(
                    "event=slow-driver-pass seconds=%.3f applied=%d %s",
                    took,
                    self.sm.applied_index,
                    " ".join(self._pass_notes),
                )
            self._pass_notes.clear()

    def _drain(self, node: RaftNode) -> None:
        inbox = self._inbox
        transport, storage = self._transport, self._storage
        assert transport is not None and storage is not None
        term: int | None = None
        while inbox:
            match inbox.popleft():
                case PeerMessages(msgs, reply):
                    for msg in msgs:
                        node.step(msg)
                    term = None
                    if reply is not None:
                        transport.hold_replies(msgs[0].src, reply)
                case Propose(data, cmd, waiter):
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
                    self._proposals.add(index, term, waiter, cmd)
                case TransferLeadership(target, tw):
                    self._handover.transfer(node, self._role, self._leader, target, tw)
                case ChangeMembership(change, force, cw):
                    self._conf.propose(
                        node, self._role, self._leader, change, force, cw, self.peer_reachable
                    )
                case SnapshotNow(sw):
                    self._snapshots.take_now(node, storage, sw)
                case SnapshotWritten() as written:
                    self._snapshots.finish(node, storage, written)
                    self._refresh_status()
                case Shutdown():
                    self._handover.begin_shutdown(
                        node, self._role, self._leader, len(self.config.peers)
                    )

    def _not_leader(self, hint: str | None) -> RaftkvError:
        if hint is None or hint == self.config.id:
            return NoLeader("no leader known (election in progress); retry")
        return NotLeader(f"node {self.config.id} is not the leader; leader is {hint}", leader=hint)

    def _handle_ready(self, node: RaftNode, rd: Ready) -> None:
        storage = self._storage
        assert storage is not None and self._transport is not None
        sm = self.sm
        if rd.snapshot is not None:
            index = rd.snapshot.meta.index
            self._snapshots.install(storage, rd.snapshot)
            self.feed.reset(index)
            self._proposals.covered_by_snapshot(index, sm)
        hs = rd.hard_state
        # A leader's messages promise nothing about its own disk (appends, heartbeats, read
        # answers; its term and vote were persisted before it led): it sends them BEFORE its
        # fsync, so followers write in parallel with it (thesis §10.2.1). Its own entries count
        # toward commit only through acknowledgements, which this thread handles after the save.
        early = (
            bool(rd.messages)
            and (rd.soft_state[0] if rd.soft_state is not None else self._role) is Role.LEADER
            and (hs is None or (hs.term, hs.voted_for) == self._saved_vote)
        )
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
        if rd.read_states:
            self._reads.released(rd.read_states)
        if rd.soft_state is not None:
            self._on_soft_state(*rd.soft_state)
        node.advance(rd)
        self._reads.applied(sm.applied_index)

    def _send(self, msgs: Sequence[Message]) -> None:
        """Hand a Ready's messages to the transport (snapshots to the snapshot sender)."""
        assert self._transport is not None
        if any(isinstance(m, InstallSnapshot) for m in msgs):
            msgs = self._stream_snapshots(msgs)
        self._transport.send(msgs)  # replies to a waiting POST ride back on it

    def _apply(self, rd: Ready) -> None:
        sm = self.sm
        proposals = self._proposals
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
                        self._conf.applied(e.index, e.term, e.data)
                else:
                    nbytes += len(e.data)
                    result = sm.apply(e.index, e.term, e.data)
                    if result.outcome is Outcome.OK and result.index == e.index:
                        changes.append(Change(e.index, result.key, result.value))
                if proposals:
                    proposals.applied(e.index, e.term, result)
        self._snaps.log_bytes += nbytes
        self.feed.publish(changes, sm.applied_index)

    def _wake_waiters(self) -> None:
        """Release the requests answered during this pass — at its very end, so the threads that
        wake do not compete for the GIL with the rest of the driver's pass."""
        self._proposals.wake()
        self._reads.wake()

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
        if not was_leader and self._reads.pending:
            # a follower whose leader changed (or that now leads): the read indexes it asked the
            # old leader for will not come; ask again, the new leader (or, leading, itself).
            # The reads confirmed already stay valid: they only wait to be applied
            self._reads.ask_again()
        if was_leader and role is not Role.LEADER:
            self._reads.fail_all(self._not_leader(leader))
        self._handover.on_role(role, leader)

    def _stream_snapshots(self, msgs: Sequence[Message]) -> list[Message]:
        """Hand every InstallSnapshot to the snapshot sender (the file, in chunks); the rest
        goes through the transport."""
        rest: list[Message] = []
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

    def _refresh_status(self) -> None:
        node = self._node
        if node is None:
            return
        st = node.status()
        self._conf.sync(node, st.commit_index, self._transport)
        conf = self._conf.membership
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
            snapshot_index=max(st.snapshot_index, self._snaps.index),
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
            "event=fatal error=%s: %s",
            type(err).__name__,
            err,
            exc_info=err,
        )
        self._fail_waiters(NodeFailed(f"node {self.config.id} failed: {type(err).__name__}: {err}"))
        if self._on_fatal is not None:
            self._on_fatal(err)

    def _fail_waiters(self, failure: RaftkvError) -> None:
        """Fail every waiter still pending (driver stopped or failed); those already answered
        during the last pass (their entries applied, their reads confirmed) get their answer."""
        self._wake_waiters()
        self._proposals.fail_all(failure)
        self._reads.fail_all(failure)
        while self._inbox:
            work = self._inbox.popleft()
            if isinstance(work, WAITING):
                work.waiter.fail(failure)
            elif isinstance(work, PeerMessages) and work.reply is not None:
                work.reply.fail(failure)
        self._handover.fail_all(failure)
        self._snapshots.fail_waiters(failure)
