"""node.py — RaftNode: the Raft protocol as a pure, deterministic state machine.

Inputs: ``tick()``, ``step(msg)``, ``propose(data)``, ``read_index(request_id)``,
``transfer_leadership(target)``, ``compact(index, data)``. Output: ``ready()`` -> Ready (see
ready.py for the driver contract: persist -> send -> apply -> ``advance(rd)``). No clock, socket,
thread or disk; the only randomness is the injected ``random.Random`` (election timeouts). Same
inputs, same outputs.

Structure (etcd's raft.go): ``step`` first does the term bookkeeping every role shares (higher
term -> follower, unless it is a (pre-)vote inside a leader lease; stale term -> ignore, or tell the
stale sender our term), answers vote requests, then dispatches on role.

Features and where they live here:
- election, randomized timeout [election_tick, 2*election_tick): ``tick``, ``campaign`` (§5.2)
- pre-vote (thesis §9.6): ``campaign``/``_handle_vote_request``; check-quorum + leader lease
  (thesis §6.2, §4.2.3): ``_tick_leader``, the lease test in ``step``
- replication and fast backtracking (Raft §5.3): ``_handle_append``, ``_handle_append_response``
- commit only entries of the current term by counting (Raft §5.4.2, Figure 8): ``_maybe_commit``;
  a NOOP entry opens every term: ``_become_leader``
- flow control (probe / replicate / snapshot, bounded in-flight, batching): progress.py +
  ``_send_append``
- snapshots (Raft §7): ``compact``, ``_send_append`` -> InstallSnapshot, ``_handle_snapshot``
- ReadIndex (thesis §6.4), batched: readonly.py + ``read_index`` / ``_handle_heartbeat_response``;
  on a follower ``read_index`` asks the leader (ReadIndex -> ReadIndexResponse, etcd's
  MsgReadIndex): the leader confirms it in its next round like its own reads and answers with the
  round's index; the follower releases it as a ReadState (served once applied >= index)
- leadership transfer (thesis §3.10): ``transfer_leadership``, TimeoutNow
- membership changes (thesis §4.1, single-server): ``propose_conf_change``; the configuration is the
  last CONFIG entry in the log (or the snapshot's), so it takes effect when appended and reverts
  when truncated (``_confs``, ``_refresh_conf``); learners replicate but never vote, never count
  toward a quorum and never campaign; a leader that removed itself leads until that commits

Persistence rule: anything a message promises (a granted vote, an acknowledged append, a new term)
is recorded in the node's hard state / log *before* the message is queued, and the driver persists
a Ready's hard state and entries before sending its messages (ready.py step 2 before step 3).
"""

from __future__ import annotations

import dataclasses
import logging
import random

from raftkv.raft.config import Config, RestoredState
from raftkv.raft.errors import (
    ConfChangeRefused,
    ConfigError,
    InvariantViolation,
    MessageDecodeError,
    NotLeader,
    ProposalDropped,
    _check,
)
from raftkv.raft.log import RaftLog
from raftkv.raft.membership import (
    ChangeOp,
    ConfChange,
    apply_change,
    decode_change,
    encode_change,
)
from raftkv.raft.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from raftkv.raft.progress import Progress, ProgressState
from raftkv.raft.quorum import VoteResult, committed_index, quorum_size, vote_result
from raftkv.raft.readonly import ReadOnly
from raftkv.raft.ready import CampaignKind, ReadState, Ready, Role, Status
from raftkv.raft.types import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    NodeId,
    Snapshot,
    SnapshotMeta,
)
from raftkv.raft.wellformed import append_problem

__all__ = ["RaftNode"]

logger = logging.getLogger(__name__)

_MESSAGE_CLASSES = tuple(MESSAGE_TYPES.values())
_FROM_LEADER = (AppendEntries, Heartbeat, InstallSnapshot)


class RaftNode:
    """One Raft peer. Not thread-safe: the driver serialises every call."""

    def __init__(
        self, cfg: Config, rng: random.Random, restored: RestoredState | None = None
    ) -> None:
        cfg.validate()
        self._cfg = cfg
        self.id: NodeId = cfg.id
        self._rng = rng
        restored = restored if restored is not None else RestoredState()
        hs = restored.hard_state
        snap = restored.snapshot
        meta: SnapshotMeta | None = snap.meta if isinstance(snap, Snapshot) else snap
        self._snapshot: Snapshot | None = snap if isinstance(snap, Snapshot) else None
        snap_index, snap_term = (meta.index, meta.term) if meta is not None else (0, 0)
        entries = list(restored.entries)
        if entries and entries[0].index != snap_index + 1:
            raise ConfigError(
                f"restored entries start at {entries[0].index}, expected {snap_index + 1} "
                f"(right after the snapshot)"
            )
        try:
            self._log = RaftLog(snap_index, snap_term, entries)
        except InvariantViolation as err:
            raise ConfigError(f"restored log is not contiguous: {err}") from err
        if hs.term < self._log.last_term():
            raise ConfigError(
                f"restored term {hs.term} is below the last log term {self._log.last_term()}"
            )
        # membership: the snapshot's configuration, then every CONFIG entry after it, in order
        self._confs: list[Membership] = [self._snapshot_conf(meta)]
        try:
            self._push_confs(entries)
        except MessageDecodeError as err:
            raise ConfigError(f"restored log holds a malformed configuration entry: {err}") from err
        self._conf = self._confs[0]
        self._voters: tuple[NodeId, ...] = ()
        self._voter_set: frozenset[NodeId] = frozenset()
        self._member_set: frozenset[NodeId] = frozenset()
        self._quorum = 1
        self._targets: tuple[NodeId, ...] = ()  # leader: every other node it replicates to

        self.term = hs.term
        self.voted_for: NodeId | None = hs.voted_for
        # the persisted commit is a hint: never beyond the persisted log, never before the snapshot
        self.commit = max(snap_index, min(hs.commit, self._log.last_index()))
        self.role = Role.FOLLOWER
        self.leader: NodeId | None = None

        self._applied = snap_index  # the driver restores its state machine from the snapshot
        self._apply_handed = snap_index  # last index handed out in Ready.committed_entries
        self._stabled = self._log.last_index()  # last index handed out for persistence
        self._pending_snapshot: Snapshot | None = None  # received, not yet handed to the driver
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._prev_hs = (hs.term, hs.voted_for, hs.commit)
        self._prev_soft: tuple[Role, NodeId | None] = (Role.FOLLOWER, None)

        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = cfg.election_tick
        self._votes: dict[NodeId, bool] = {}
        self._progress: dict[NodeId, Progress] = {}
        self._transferee: NodeId | None = None
        self._transfer_elapsed = 0
        self._reads = ReadOnly()
        # leader: followers' reads in its rounds, by the id they carry there -> (follower, its id)
        self._remote_reads: dict[str, tuple[NodeId, str]] = {}
        self._remote_seq = 0
        self._bcast = False  # leader: new entries to send at the next ready()
        self._reset_randomized_timeout()
        self._set_conf(self._confs[0])
        self._refresh_conf()

    # ------------------------------------------------------------------ public API

    def tick(self) -> None:
        """Advance logical time by one tick."""
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._election_elapsed += 1
            if self._election_elapsed >= self._randomized_timeout and self._may_campaign():
                self._election_elapsed = 0
                self.campaign()
            # a node that may not campaign (learner, joining, removed) lets its leader lease run
            # out instead, so it answers the (pre-)votes a new election needs from it

    def propose(self, data: bytes) -> int:
        """Append ``data`` as a new entry; returns its index. NotLeader / ProposalDropped."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader)
        if self._transferee is not None:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise ConfigError(f"propose: data must be bytes, got {type(data).__name__}")
            data = bytes(data)
        index = self._log.last_index() + 1
        self._append_local(Entry(index=index, term=self.term, kind=EntryKind.NORMAL, data=data))
        self._bcast = True
        if self._quorum == 1:
            self._maybe_commit()
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a membership change (thesis §4.1); returns its index. The new configuration takes
        effect here at once (and on each follower when it appends the entry).

        NotLeader; ProposalDropped during a leadership transfer; ConfChangeRefused when another
        change is not committed yet, when no entry of this leader's term is committed yet, or when
        the change is invalid for the current configuration.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader)
        if self._transferee is not None:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        if not self._leader_ready_for_change():
            raise ConfChangeRefused(
                "leader-not-ready",
                f"leader {self.id} has not committed an entry of its term {self.term} yet; retry",
            )
        if self._conf_change_in_flight():
            raise ConfChangeRefused(
                "in-flight",
                f"the membership change at index {self._conf.index} is not committed yet "
                f"(commit index {self.commit}); one change at a time",
            )
        if change.op is ChangeOp.BOOTSTRAP:
            raise ConfChangeRefused("invalid", "bootstrap is written by the first leader only")
        try:
            new = apply_change(self._conf, change)
        except ConfigError as err:
            raise ConfChangeRefused("invalid", str(err)) from err
        index = self._log.last_index() + 1
        new = dataclasses.replace(new, index=index)
        logger.info(
            "node=%s term=%d proposing membership change index=%d: %s",
            self.id,
            self.term,
            index,
            change.describe(),
        )
        data = encode_change(change, new)
        self._append_local(Entry(index=index, term=self.term, kind=EntryKind.CONFIG, data=data))
        self._confs.append(new)
        self._refresh_conf()
        self._bcast = True
        self._maybe_commit()
        return index

    def read_index(self, request_id: str) -> None:
        """Start a linearizable read; released later as Ready.read_states.

        On a follower that knows its leader the read index is asked of the leader (thesis §6.4:
        the answer is the leader's commit index once it confirmed its leadership); an answer
        lost on the way is never released (the driver times the read out). NotLeader when no
        leader is known (or this node campaigns).
        """
        if self.role is not Role.LEADER:
            if self.role is Role.FOLLOWER and self.leader is not None:
                self._send(
                    ReadIndex(src=self.id, dst=self.leader, term=self.term, request_id=request_id)
                )
                return
            raise NotLeader(self.leader)
        if self._log.term(self.commit) != self.term:
            # thesis §6.4 step 1: the commit index is only known to be current once an entry of
            # this term is committed (our NOOP). Queue until then.
            self._reads.defer(request_id)
            return
        self._start_reads([request_id])

    def transfer_leadership(self, target: NodeId | None = None) -> NodeId:
        """Hand leadership to ``target`` (None: the most up-to-date follower); returns the target.

        The leader stops taking proposals, brings the target up to date, then sends TimeoutNow.
        The transfer is abandoned after an election timeout (proposals resume).
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader)
        others = tuple(p for p in self._voters if p != self.id)
        if target is None:
            if not others:
                raise ConfigError("transfer_leadership: no other voter to hand leadership to")
            target = max(others, key=lambda p: self._progress[p].match)
        elif target not in self._voter_set:
            raise ConfigError(f"transfer_leadership: {target!r} is not a voter")
        if target == self.id:
            self._transferee = None
            return target
        if self._transferee == target:
            return target
        logger.info("node=%s term=%d transferring leadership to=%s", self.id, self.term, target)
        self._transferee = target
        self._transfer_elapsed = 0
        pr = self._progress[target]
        if pr.match == self._log.last_index():
            self._send_timeout_now(target)
        else:
            # send what we can; if everything is (maybe lost) in flight, an empty append makes the
            # target tell us where it stands without waiting for the next heartbeat
            if not self._send_append(target, pr, allow_empty=True):
                self._send_appends(target)
        return target

    def compact(self, index: int, data: bytes) -> None:
        """The driver durably saved a snapshot of applied state up to ``index``: drop the log before
        it and keep the snapshot to send to followers that are too far behind."""
        if index <= self._log.offset:
            return
        if index > self._applied:
            raise ConfigError(f"compact: index {index} is beyond the applied index {self._applied}")
        term = self._log.term(index)
        _check(term is not None, "compact: no term for index %d", index)
        assert term is not None
        conf = self.membership_at(index)
        self._snapshot = Snapshot(
            meta=SnapshotMeta(index=index, term=term, members=conf.voters, membership=conf),
            data=bytes(data),
        )
        self._log.compact(index)
        self._confs = [conf] + [c for c in self._confs if c.index > index]
        logger.info("node=%s term=%d compacted log up to index=%d", self.id, self.term, index)

    def step(self, m: Message) -> None:
        """Process a message from a peer. Stale, misaddressed or malformed ones are ignored."""
        if not isinstance(m, _MESSAGE_CLASSES):
            logger.warning("node=%s ignored non-message %s", self.id, type(m).__name__)
            return
        if m.dst != self.id or m.src == self.id or type(m.term) is not int or m.term < 0:
            logger.warning("node=%s ignored misaddressed message: %s", self.id, m.describe())
            return
        if not self._accepts_from(m):
            # a removed (or never added) node cannot disrupt the cluster: its votes, answers and
            # terms are not ours to count
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("node=%s ignored message from non-member: %s", self.id, m.describe())
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("node=%s step %s", self.id, m.describe())

        if m.term > self.term:
            if isinstance(m, RequestVote):
                in_lease = (
                    self._cfg.check_quorum
                    and self.leader is not None
                    and self._election_elapsed < self._cfg.election_tick
                )
                if in_lease and not m.transfer:
                    # leader lease (thesis §4.2.3): we heard from a leader recently; a disruptive
                    # (pre-)candidate must not depose it.
                    logger.info(
                        "node=%s term=%d ignored %s from=%s reason=leader-lease leader=%s",
                        self.id,
                        self.term,
                        "pre-vote" if m.pre_vote else "vote",
                        m.src,
                        self.leader,
                    )
                    return
            if isinstance(m, RequestVote) and m.pre_vote:
                pass  # a pre-vote never changes our term
            elif isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted:
                pass  # granted pre-votes carry the future term
            else:
                leader = m.src if isinstance(m, _FROM_LEADER) else None
                elapsed = self._election_elapsed
                self._become_follower(m.term, leader)
                if isinstance(m, RequestVote):
                    # Raft Figure 2: only a GRANTED vote restarts the election timer. A stale
                    # candidate that can never win must not keep the up-to-date nodes from
                    # campaigning (a livelock without pre-vote); _handle_vote_request resets the
                    # timer when it grants.
                    self._election_elapsed = elapsed
        elif m.term < self.term:
            if isinstance(m, AppendEntries | Heartbeat) and (
                self._cfg.check_quorum or self._cfg.pre_vote
            ):
                # a stale leader (e.g. behind a healed partition) learns the new term from this
                self._send(AppendEntriesResponse(src=self.id, dst=m.src, term=self.term, index=0))
            elif isinstance(m, RequestVote) and m.pre_vote:
                self._send(
                    RequestVoteResponse(
                        src=self.id, dst=m.src, term=self.term, granted=False, pre_vote=True
                    )
                )
            return

        if isinstance(m, RequestVote):
            self._handle_vote_request(m)
        elif isinstance(m, ReadIndexResponse):
            # the leader of our term (there is one per term) confirmed this read index
            if self.role is not Role.LEADER:
                self._read_states.append(ReadState(m.request_id, m.index))
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role is Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._stabled < self._log.last_index()
            or self.commit > self._apply_handed
            or self._read_states
            or self._pending_snapshot is not None
            or (self._bcast and self.role is Role.LEADER)
            or (self.term, self.voted_for, self.commit) != self._prev_hs
            or (self.role, self.leader) != self._prev_soft
        )

    def ready(self) -> Ready:
        """Everything the driver must do now (see ready.py for the order). Hands it over once."""
        if self._bcast:
            self._bcast = False
            if self.role is Role.LEADER:
                for p in self._targets:
                    self._send_appends(p)
        log = self._log
        last = log.last_index()
        entries: tuple[Entry, ...] = ()
        if last > self._stabled:
            entries = tuple(log.slice(self._stabled + 1, last))
            self._stabled = last
        committed: tuple[Entry, ...] = ()
        if self.commit > self._apply_handed:
            _check(
                self._apply_handed >= log.offset,
                "committed entries %d.. were compacted before being applied",
                self._apply_handed + 1,
            )
            committed = tuple(log.slice(self._apply_handed + 1, self.commit))
            self._apply_handed = self.commit
        hs_now = (self.term, self.voted_for, self.commit)
        hard_state = None
        must_sync = bool(entries) or hs_now[:2] != self._prev_hs[:2]
        if hs_now != self._prev_hs:
            hard_state = HardState(term=self.term, voted_for=self.voted_for, commit=self.commit)
            self._prev_hs = hs_now
        soft_now = (self.role, self.leader)
        soft_state = None
        if soft_now != self._prev_soft:
            soft_state = soft_now
            self._prev_soft = soft_now
        rd = Ready(
            snapshot=self._pending_snapshot,
            hard_state=hard_state,
            entries=entries,
            messages=tuple(self._msgs),
            committed_entries=committed,
            read_states=tuple(self._read_states),
            soft_state=soft_state,
            must_sync=must_sync,
        )
        self._pending_snapshot = None
        self._msgs = []
        self._read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd``."""
        if rd.snapshot is not None and rd.snapshot.meta.index > self._applied:
            self._applied = rd.snapshot.meta.index
        if rd.committed_entries:
            last = rd.committed_entries[-1].index
            if last > self._applied:
                self._applied = last

    def status(self) -> Status:
        progress: dict[NodeId, int] = {}
        if self.role is Role.LEADER:
            progress = {p: pr.match for p, pr in self._progress.items()}
        conf = self._conf
        return Status(
            id=self.id,
            role=self.role,
            term=self.term,
            leader=self.leader,
            commit_index=self.commit,
            applied_index=self._applied,
            last_log_index=self._log.last_index(),
            snapshot_index=self._log.offset,
            members=conf.voters,
            progress=progress,
            voters=conf.voters,
            learners=conf.learners,
            config_index=conf.index,
            membership=conf,
        )

    @property
    def membership(self) -> Membership:
        """The configuration in effect: the last one appended to this node's log."""
        return self._conf

    def membership_at(self, index: int) -> Membership:
        """The configuration in effect at log ``index`` (>= the snapshot index): what a snapshot
        taken at ``index`` must carry."""
        for conf in reversed(self._confs):
            if conf.index <= index:
                return conf
        return self._confs[0]

    # ------------------------------------------------------------------ read-only accessors

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def last_log_index(self) -> int:
        return self._log.last_index()

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot the core holds (taken by compact() or received), with its data."""
        return self._snapshot

    def log_entries(self, lo: int = 1, hi: int | None = None) -> list[Entry]:
        """Entries lo..hi held in memory (for tests, checkers and debugging)."""
        return self._log.slice(lo, self._log.last_index() if hi is None else hi)

    def term_at(self, index: int) -> int | None:
        return self._log.term(index)

    # ------------------------------------------------------------------ roles

    def _reset_randomized_timeout(self) -> None:
        et = self._cfg.election_tick
        self._randomized_timeout = et + self._rng.randrange(et)

    def _reset_leader_state(self) -> None:
        self._votes = {}
        self._progress = {}
        self._targets = ()
        self._transferee = None
        self._reads.reset()
        self._remote_reads.clear()  # their followers time them out
        self._bcast = False

    def _become_follower(self, term: int, leader: NodeId | None) -> None:
        _check(term >= self.term, "term moved backwards: %d -> %d", self.term, term)
        old_role = self.role
        if term != self.term:
            self.term = term
            self.voted_for = None
        self._reset_leader_state()
        self.role = Role.FOLLOWER
        self.leader = leader
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        if old_role is not Role.FOLLOWER:
            logger.info("node=%s term=%d became follower leader=%s", self.id, term, leader)

    def campaign(self, kind: CampaignKind | None = None) -> None:
        """Start an election now (Raft §5.2; etcd's ``campaign(t)``): the one campaign path.

        ``None``: as the election timer does (a pre-vote first when configured, thesis §9.6);
        ``ELECTION``: bump the term and ask for votes (also a pre-candidate that won its pre-vote);
        ``TRANSFER``: like ELECTION, the votes marked as a leadership transfer (TimeoutNow), which
        voters grant despite a current leader. A no-op on the leader; learners, joining and
        removed nodes never campaign."""
        if self.role is Role.LEADER or not self._may_campaign():
            return
        if kind is None:
            kind = CampaignKind.PRE_ELECTION if self._cfg.pre_vote else CampaignKind.ELECTION
        pre = kind is CampaignKind.PRE_ELECTION
        self._reset_leader_state()
        if pre:  # ask first whether we could win, without bumping anyone's term
            self.role = Role.PRE_CANDIDATE
            vote_term = self.term + 1
        else:
            self.term += 1
            self.voted_for = self.id
            self.role = Role.CANDIDATE
            vote_term = self.term
        self.leader = None
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        self._votes = {self.id: True}
        logger.info("node=%s term=%d became %s", self.id, self.term, self.role.value)
        electorate = self._electorate()
        if vote_result(self._votes, electorate) is VoteResult.WON:
            if pre:
                self.campaign(CampaignKind.ELECTION)
            else:
                self._become_leader()
            return
        for p in electorate:
            if p == self.id:
                continue
            self._send(
                RequestVote(
                    src=self.id,
                    dst=p,
                    term=vote_term,
                    last_log_index=self._log.last_index(),
                    last_log_term=self._log.last_term(),
                    pre_vote=pre,
                    transfer=kind is CampaignKind.TRANSFER,
                )
            )

    def _become_leader(self) -> None:
        _check(self.role is Role.CANDIDATE, "only a candidate can become leader")
        self._reset_leader_state()
        self.role = Role.LEADER
        self.leader = self.id
        self._heartbeat_elapsed = 0
        self._election_elapsed = 0
        last = self._log.last_index()
        # ourselves too: we may lead while our own removal is not committed (thesis §4.2.2)
        self._progress = {p: Progress(last + 1) for p in (*self._conf.members, self.id)}
        me = self._progress[self.id]
        me.match = last
        me.become_replicate()
        self._targets = tuple(sorted(p for p in self._progress if p != self.id))
        logger.info("node=%s term=%d became leader", self.id, self.term)
        # Raft §5.4.2 / thesis §6.4: an entry of our own term lets us commit (and serve reads).
        # It is a NOOP, or, while the configuration comes from flags (never logged), the bootstrap
        # CONFIG entry that writes it into the log: from then on the log defines membership.
        if self._conf.index == 0:
            conf = dataclasses.replace(self._conf, index=last + 1)
            data = encode_change(ConfChange(op=ChangeOp.BOOTSTRAP), conf)
            self._append_local(
                Entry(index=last + 1, term=self.term, kind=EntryKind.CONFIG, data=data)
            )
            self._confs.append(conf)
            self._refresh_conf()
        else:
            self._append_local(Entry(index=last + 1, term=self.term, kind=EntryKind.NOOP))
        self._bcast = True
        if self._quorum == 1:
            self._maybe_commit()

    def _append_local(self, entry: Entry) -> None:
        self._log.append_one(entry)
        me = self._progress[self.id]
        me.match = entry.index
        me.next = entry.index + 1

    # ------------------------------------------------------------------ votes

    def _handle_vote_request(self, m: RequestVote) -> None:
        can_vote = (
            self.voted_for == m.src
            or (self.voted_for is None and self.leader is None)
            or (m.pre_vote and m.term > self.term)
        )
        if can_vote and self._log.is_up_to_date(m.last_log_index, m.last_log_term):
            # granting a real vote updates voted_for first: persisted before the answer leaves
            if not m.pre_vote:
                self._election_elapsed = 0
                self.voted_for = m.src
            logger.info(
                "node=%s term=%d granted %s to=%s",
                self.id,
                self.term,
                "pre-vote" if m.pre_vote else "vote",
                m.src,
            )
            self._send(
                RequestVoteResponse(
                    src=self.id, dst=m.src, term=m.term, granted=True, pre_vote=m.pre_vote
                )
            )
        else:
            reason = "already-voted" if not can_vote else "stale-log"
            logger.info(
                "node=%s term=%d rejected %s for=%s reason=%s",
                self.id,
                self.term,
                "pre-vote" if m.pre_vote else "vote",
                m.src,
                reason,
            )
            self._send(
                RequestVoteResponse(
                    src=self.id, dst=m.src, term=self.term, granted=False, pre_vote=m.pre_vote
                )
            )

    def _step_candidate(self, m: Message) -> None:
        if isinstance(m, _FROM_LEADER):
            # a leader exists in our term (m.term == self.term here)
            self._become_follower(m.term, m.src)
            self._step_follower(m)
        elif isinstance(m, RequestVoteResponse):
            if not self._counts_vote(m):
                return
            self._votes.setdefault(m.src, m.granted)
            result = vote_result(self._votes, self._electorate())
            if result is VoteResult.WON:
                if self.role is Role.PRE_CANDIDATE:
                    self.campaign(CampaignKind.ELECTION)
                else:
                    self._become_leader()
            elif result is VoteResult.LOST:
                self._become_follower(self.term, None)

    def _counts_vote(self, m: RequestVoteResponse) -> bool:
        """Does this answer belong to our current (pre-)election? (A seam the simulation's
        mutation test breaks on purpose: counting votes from another term must be caught.)"""
        if self.role is Role.PRE_CANDIDATE:
            if not m.pre_vote:
                return False
            # granted pre-votes carry the term we would campaign in; rejections carry ours
            return m.term == (self.term + 1 if m.granted else self.term)
        return not m.pre_vote and m.term == self.term

    # ------------------------------------------------------------------ follower

    def _step_follower(self, m: Message) -> None:
        if isinstance(m, AppendEntries):
            self._election_elapsed = 0
            self.leader = m.src
            self._handle_append(m)
        elif isinstance(m, Heartbeat):
            self._election_elapsed = 0
            self.leader = m.src
            self._handle_heartbeat(m)
        elif isinstance(m, InstallSnapshot):
            self._election_elapsed = 0
            self.leader = m.src
            self._handle_snapshot(m)
        elif isinstance(m, TimeoutNow):
            logger.info(
                "node=%s term=%d got TimeoutNow from=%s: campaigning", self.id, self.term, m.src
            )
            self.campaign(CampaignKind.TRANSFER)

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            _check(
                index <= self._log.last_index(),
                "commit %d beyond the last log index %d",
                index,
                self._log.last_index(),
            )
            self.commit = index
            if self._confs[-1] is not self._conf:
                self._refresh_conf()

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        ents = m.entries
        problem = append_problem(m)
        if problem is not None:
            logger.warning(
                "node=%s ignored malformed append (%s): %s", self.id, problem, m.describe()
            )
            return
        has_config = any(e.kind is EntryKind.CONFIG for e in ents)
        if m.prev_index < self.commit:
            # already committed here: tell the leader where we are
            self._send(
                AppendEntriesResponse(src=self.id, dst=m.src, term=self.term, index=self.commit)
            )
            return
        if log.match_term(m.prev_index, m.prev_term):
            last_new = m.prev_index + len(ents)
            if ents:
                if m.prev_index == log.last_index():
                    log.append(list(ents))
                    if has_config:
                        self._push_confs(ents)
                        self._refresh_conf()
                else:
                    conflict = 0
                    for e in ents:
                        if log.term(e.index) != e.term:
                            conflict = e.index
                            break
                    if conflict:
                        if conflict <= self.commit:
                            # impossible from a correct leader (Leader Completeness): refuse it
                            # rather than lose a committed entry
                            logger.error(
                                "node=%s term=%d refused append rewriting committed index=%d "
                                "commit=%d: %s",
                                self.id,
                                self.term,
                                conflict,
                                self.commit,
                                m.describe(),
                            )
                            return
                        if conflict <= log.last_index():
                            log.truncate_from(conflict)
                            if self._stabled >= conflict:
                                self._stabled = conflict - 1
                            # a configuration whose entry is gone reverts (thesis §4.1)
                            while len(self._confs) > 1 and self._confs[-1].index >= conflict:
                                self._confs.pop()
                        fresh = ents[conflict - m.prev_index - 1 :]
                        log.append(list(fresh))
                        self._push_confs(fresh)
                        self._refresh_conf()
            self._commit_to(min(m.commit, last_new))
            self._send(
                AppendEntriesResponse(src=self.id, dst=m.src, term=self.term, index=last_new)
            )
            return
        # reject with a fast-backtracking hint (Raft §5.3, the "optimization" paragraph)
        last = log.last_index()
        if m.prev_index > last:
            hint_term, hint_index = 0, last + 1
        else:
            t = log.term(m.prev_index)
            if t is None:  # cannot happen: prev_index >= commit >= snapshot index
                hint_term, hint_index = 0, self.commit + 1
            else:
                hint_term = t
                hint_index = max(log.first_index_of_term(t), self.commit + 1)
        self._send(
            AppendEntriesResponse(
                src=self.id,
                dst=m.src,
                term=self.term,
                index=m.prev_index,
                reject=True,
                hint_index=hint_index,
                hint_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        # the leader never sends a commit above our match, so this entry is ours too
        self._commit_to(min(m.commit, self._log.last_index()))
        self._send(HeartbeatResponse(src=self.id, dst=m.src, term=self.term, context=m.context))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        meta = m.snapshot.meta
        if meta.index <= self.commit:
            self._send(
                AppendEntriesResponse(src=self.id, dst=m.src, term=self.term, index=self.commit)
            )
            return
        if self._log.match_term(meta.index, meta.term):
            # we already hold the snapshot's last entry: just fast-forward the commit
            self._commit_to(meta.index)
        else:
            logger.info(
                "node=%s term=%d restoring snapshot index=%d term=%d from=%s",
                self.id,
                self.term,
                meta.index,
                meta.term,
                m.src,
            )
            self._log.restore(meta.index, meta.term)
            self.commit = meta.index
            self._stabled = meta.index
            self._apply_handed = meta.index
            self._pending_snapshot = m.snapshot
            self._snapshot = m.snapshot
            self._confs = [self._snapshot_conf(meta)]
            self._refresh_conf()
        self._send(AppendEntriesResponse(src=self.id, dst=m.src, term=self.term, index=meta.index))

    # ------------------------------------------------------------------ leader

    def _tick_leader(self) -> None:
        cfg = self._cfg
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= cfg.election_tick:
            self._election_elapsed = 0
            self._forget_silent_removed()
            if cfg.check_quorum:
                prs = self._progress
                active = sum(1 for v in self._voters if v == self.id or prs[v].recent_active)
                for pr in prs.values():
                    pr.recent_active = False
                if active < self._quorum:
                    logger.warning(
                        "node=%s term=%d stepped down: heard from %d of %d voters (quorum %d)",
                        self.id,
                        self.term,
                        active,
                        len(self._voters),
                        self._quorum,
                    )
                    self._become_follower(self.term, None)
                    return
        if self._transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= cfg.election_tick:
                logger.warning(
                    "node=%s term=%d aborted leadership transfer to=%s (timeout)",
                    self.id,
                    self.term,
                    self._transferee,
                )
                self._transferee = None
        for pr in self._progress.values():
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed += 1
                if pr.snapshot_elapsed >= cfg.election_tick:
                    pr.become_probe()  # the snapshot (or its answer) was lost: try again
        if self._heartbeat_elapsed >= cfg.heartbeat_tick:
            self._heartbeat_elapsed = 0
            reads = self._reads
            reads.start_batch(self.commit, self.id)
            self._bcast_heartbeat(reads.last_pending_context())

    def _step_leader(self, m: Message) -> None:
        if isinstance(m, AppendEntriesResponse):
            self._handle_append_response(m)
        elif isinstance(m, HeartbeatResponse):
            self._handle_heartbeat_response(m)
        elif isinstance(m, ReadIndex):
            self._handle_read_index(m)
        elif isinstance(m, _FROM_LEADER):
            logger.error(
                "node=%s term=%d another leader in our term: %s", self.id, self.term, m.describe()
            )

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

    def _bcast_heartbeat(self, context: int) -> None:
        commit = self.commit
        for p in self._targets:
            pr = self._progress[p]
            self._send(
                Heartbeat(
                    src=self.id,
                    dst=p,
                    term=self.term,
                    commit=min(pr.match, commit),
                    context=context,
                )
            )

    def _send_timeout_now(self, target: NodeId) -> None:
        logger.info("node=%s term=%d sent TimeoutNow to=%s", self.id, self.term, target)
        self._send(TimeoutNow(src=self.id, dst=target, term=self.term))

    def _send_appends(self, peer: NodeId) -> None:
        """Send as much as flow control allows to ``peer``."""
        pr = self._progress[peer]
        if pr.state is ProgressState.REPLICATE:
            while self._send_append(peer, pr, allow_empty=False):
                pass
        else:
            self._send_append(peer, pr, allow_empty=True)

    def _send_append(self, peer: NodeId, pr: Progress, allow_empty: bool) -> bool:
        """Send one AppendEntries (or the snapshot) to ``peer``. True if entries were sent and
        more might follow (REPLICATE pipelining)."""
        if pr.is_paused(self._cfg.max_inflight_msgs):
            return False
        log = self._log
        prev = pr.next - 1
        prev_term = log.term(prev)
        if prev_term is None:
            _check(
                prev < log.offset,
                "progress next %d beyond the log end %d",
                pr.next,
                log.last_index(),
            )
            snap = self._snapshot
            if snap is None:
                logger.warning(
                    "node=%s term=%d cannot catch up peer=%s: log compacted but no snapshot data",
                    self.id,
                    self.term,
                    peer,
                )
                return False
            logger.info(
                "node=%s term=%d sending snapshot index=%d to=%s",
                self.id,
                self.term,
                snap.meta.index,
                peer,
            )
            self._send(InstallSnapshot(src=self.id, dst=peer, term=self.term, snapshot=snap))
            pr.become_snapshot(snap.meta.index)
            return False
        ents = log.slice_limited(
            pr.next, self._cfg.max_entries_per_msg, self._cfg.max_bytes_per_msg
        )
        if not ents and not allow_empty:
            return False
        self._send(
            AppendEntries(
                src=self.id,
                dst=peer,
                term=self.term,
                prev_index=prev,
                prev_term=prev_term,
                entries=tuple(ents),
                commit=self.commit,
            )
        )
        if pr.state is ProgressState.REPLICATE:
            if ents:
                last = ents[-1].index
                pr.next = last + 1
                pr.inflight.append(last)
                return True
            return False
        pr.probe_sent = True
        return False

    def _handle_append_response(self, m: AppendEntriesResponse) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        last = self._log.last_index()
        if m.reject:
            if m.index > last:
                # an honest follower only rejects a prev_index we sent (<= our last index)
                logger.warning("node=%s ignored reject beyond our log: %s", self.id, m.describe())
                return
            if m.hint_term == 0:
                nxt = m.hint_index
            else:
                li = self._log.last_index_of_term(m.hint_term)
                nxt = li + 1 if li is not None else m.hint_index
            match = pr.match
            if pr.maybe_decrease_to(m.index, min(max(nxt, 1), last + 1)):
                if pr.match < match:
                    logger.warning(
                        "node=%s term=%d peer=%s does not hold the entries it acknowledged "
                        "(match was %d; it rejected prev=%d twice, hint %d/%d): probing from %d "
                        "(a wiped disk, or a duplicated old rejection)",
                        self.id,
                        self.term,
                        m.src,
                        match,
                        m.index,
                        m.hint_index,
                        m.hint_term,
                        pr.next,
                    )
                logger.debug(
                    "node=%s term=%d peer=%s rejected prev=%d, probing from %d",
                    self.id,
                    self.term,
                    m.src,
                    m.index,
                    pr.next,
                )
                self._send_append(m.src, pr, allow_empty=True)
            return
        if m.index > last:
            logger.warning("node=%s ignored ack beyond our log: %s", self.id, m.describe())
            return
        updated = pr.maybe_update(m.index)
        if pr.state is ProgressState.PROBE:
            if m.index >= pr.match:
                pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_replicate()
        if updated:
            self._maybe_commit()
            if self.role is not Role.LEADER:
                return  # our own removal committed: we stepped down
            if m.src not in self._member_set:
                self._prune_removed()
            if m.src == self._transferee and pr.match == self._log.last_index():
                self._send_timeout_now(m.src)
        if m.src in self._progress:
            self._send_appends(m.src)

    def _handle_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = False
        elif (
            pr.state is ProgressState.REPLICATE and len(pr.inflight) >= self._cfg.max_inflight_msgs
        ):
            pr.inflight.popleft()  # unstick a pipeline whose acks were lost
        if pr.match < self._log.last_index():
            self._send_append(m.src, pr, allow_empty=True)
        if m.context:
            reads = self._reads
            reads.recv_ack(m.src, m.context)
            for r in reads.advance(self._quorum, self._voter_set):
                self._release_reads(r.request_ids, r.index)
            if not reads.in_flight:
                context = reads.start_batch(self.commit, self.id)
                if context:
                    self._bcast_heartbeat(context)

    def _maybe_commit(self) -> bool:
        """Raft §5.4.2 / Figure 8: commit by counting replicas only an entry of the current term.
        Only voters count (a leader that removed itself does not count itself)."""
        prs = self._progress
        q = committed_index((prs[v].match for v in self._voters), self._quorum)
        if q > self.commit and self._may_commit_by_counting(q):
            self.commit = q
            if self._confs[-1] is not self._conf:
                self._refresh_conf()
            if self.commit >= self._conf.index:
                self._conf_committed()
                if self.role is not Role.LEADER:
                    return True
            deferred = self._reads.take_deferred()
            if deferred:
                self._start_reads(deferred)
            return True
        return False

    def _conf_committed(self) -> None:
        """Leader: the configuration in effect is committed. Stop replicating to removed nodes;
        if we removed ourselves, step down (thesis §4.2.2), handing over to an up-to-date voter."""
        conf = self._conf
        self._prune_removed()
        if self.id in self._voter_set:
            return
        last = self._log.last_index()
        caught_up = [v for v in self._voters if self._progress[v].match == last]
        logger.info(
            "node=%s term=%d stepped down: its removal (index %d) is committed",
            self.id,
            self.term,
            conf.index,
        )
        if caught_up:
            self._send_timeout_now(min(caught_up))
        self._become_follower(self.term, None)

    def _may_commit_by_counting(self, index: int) -> bool:
        """Figure 8: only an entry of the current term is committed by counting replicas. (A seam
        the simulation's mutation test breaks on purpose.)"""
        return self._log.term(index) == self.term

    def _start_reads(self, request_ids: list[str]) -> None:
        if self._quorum == 1 and self.id in self._voter_set:
            self._release_reads(request_ids, self.commit)
            return
        context = self._reads.add_request(self.commit, request_ids, self.id)
        if context:
            self._bcast_heartbeat(context)

    def _handle_read_index(self, m: ReadIndex) -> None:
        """A follower's read: it joins our rounds under an id of ours; the round's index is sent
        back (``_release_reads``) once a quorum confirmed our leadership after it arrived."""
        self._remote_seq += 1
        rid = f"\x1fremote-{self._remote_seq}"  # never a driver's id: those are printable
        self._remote_reads[rid] = (m.src, m.request_id)
        if self._log.term(self.commit) != self.term:
            self._reads.defer(rid)  # as for our own reads: the commit index is not known yet
            return
        self._start_reads([rid])

    def _release_reads(self, request_ids: list[str], index: int) -> None:
        """Confirmed reads at ``index``: ours become ReadStates, followers' get their answer."""
        remote = self._remote_reads
        for rid in request_ids:
            origin = remote.pop(rid, None) if remote else None
            if origin is None:
                self._read_states.append(ReadState(rid, index))
            else:
                self._send(
                    ReadIndexResponse(
                        src=self.id,
                        dst=origin[0],
                        term=self.term,
                        request_id=origin[1],
                        index=index,
                    )
                )

    # ------------------------------------------------------------------ membership

    def _prune_removed(self) -> None:
        """Leader, configuration committed: stop replicating to nodes it removed, each once it
        holds the entry that removed it. A last heartbeat tells it the removal is committed (it
        then never campaigns again); nothing is sent to it afterwards."""
        conf = self._conf
        if self.commit < conf.index:
            return
        done = [
            p
            for p, pr in self._progress.items()
            if p != self.id and p not in self._member_set and pr.match >= conf.index
        ]
        if not done:
            return
        for p in done:
            pr = self._progress.pop(p)
            commit = min(pr.match, self.commit)
            self._send(Heartbeat(src=self.id, dst=p, term=self.term, commit=commit))
        self._targets = tuple(sorted(p for p in self._progress if p != self.id))

    def _forget_silent_removed(self) -> None:
        """Leader, once per election timeout: stop replicating to removed nodes that did not
        answer for a whole election timeout (down, or ignored for their higher term)."""
        if self.commit < self._conf.index:
            return
        silent = []
        for p, pr in self._progress.items():
            if p != self.id and p not in self._member_set:
                if not pr.recent_active:
                    silent.append(p)
                pr.recent_active = False
        if silent:
            for p in silent:
                del self._progress[p]
            self._targets = tuple(sorted(p for p in self._progress if p != self.id))

    def _snapshot_conf(self, meta: SnapshotMeta | None) -> Membership:
        """The configuration a snapshot carries; for an old snapshot (or none) the flags' one."""
        if meta is not None and meta.membership is not None:
            return meta.membership
        cfg = self._cfg
        voters = tuple(meta.members) if meta is not None and meta.members else tuple(cfg.peers)
        urls = dict(cfg.peer_urls)
        return Membership(
            voters=voters, urls=tuple(sorted((p, urls[p]) for p in voters if p in urls)), index=0
        )

    def _push_confs(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        for e in entries:
            if e.kind is EntryKind.CONFIG:
                self._confs.append(decode_change(e.data, e.index)[1])

    def _refresh_conf(self) -> None:
        """Make the configuration in effect the newest one at or below ``_conf_limit()``."""
        limit = self._conf_limit()
        conf = self._confs[0]
        for c in reversed(self._confs):
            if c.index <= limit:
                conf = c
                break
        if conf is not self._conf:
            self._set_conf(conf)

    def _set_conf(self, conf: Membership) -> None:
        old = self._conf
        self._conf = conf
        self._voters = tuple(sorted(conf.voters))
        self._voter_set = frozenset(conf.voters)
        self._member_set = frozenset(conf.members)
        self._quorum = quorum_size(len(self._voters))
        if old is not conf and (old.voters, old.learners) != (conf.voters, conf.learners):
            logger.info(
                "node=%s term=%d configuration index=%d voters=%s learners=%s (was index=%d)",
                self.id,
                self.term,
                conf.index,
                ",".join(conf.voters),
                ",".join(conf.learners) or "-",
                old.index,
            )
        if self.role is Role.LEADER:
            last = self._log.last_index()
            for p in conf.members:
                if p not in self._progress:
                    self._progress[p] = Progress(last + 1)
            self._targets = tuple(sorted(p for p in self._progress if p != self.id))
            if self._transferee is not None and self._transferee not in self._voter_set:
                self._transferee = None

    def _accepts_from(self, m: Message) -> bool:
        """Messages from a leader are taken from anyone (a new voter may lead before we appended
        the entry that added it); vote requests only from voters; the rest from members (or, on a
        leader, nodes it still replicates to)."""
        if isinstance(m, _FROM_LEADER):
            return True
        if isinstance(m, RequestVote):
            # also from a voter our own uncommitted change removes: it may campaign until that
            # change commits (thesis §4.2.2), and must learn our term and our log's verdict
            return m.src in self._electorate() or m.src in self._being_removed()
        if isinstance(m, TimeoutNow | ReadIndexResponse) and m.src == self.leader:
            return True  # a leader that removed itself hands over to us; our leader's answer
        if m.src in self._member_set:
            return True
        # a removed node we still replicate to (until it holds its removal): its answers count,
        # its term never moves ours
        return m.src in self._progress and m.term <= self.term

    def _may_campaign(self) -> bool:
        """Voters campaign. So does a voter whose removal is appended but not committed (thesis
        §4.2.2: it "might still be needed until the Cnew entry is committed"; it does not count
        its own vote). Learners, joining nodes and nodes whose removal committed never do."""
        if self.id in self._electorate():
            return True
        return self.id in self._being_removed()

    def _being_removed(self) -> frozenset[NodeId]:
        """Voters that the configuration in effect removes while it is not committed yet."""
        conf = self._conf
        if conf.index <= self.commit:
            return frozenset()
        pos = self._confs.index(conf)
        if pos == 0:
            return frozenset()
        return frozenset(self._confs[pos - 1].voters) - self._voter_set

    def _electorate(self) -> tuple[NodeId, ...]:
        """Who votes: the voters of the configuration in effect. (A seam the simulation's mutation
        test breaks on purpose: counting learners' votes must be caught.)"""
        return self._voters

    def _conf_limit(self) -> int:
        """A configuration takes effect once its entry is APPENDED (thesis §4.1), not committed.
        (A seam the mutation test breaks on purpose: switching at commit must be caught.)"""
        return self._log.last_index()

    def _conf_change_in_flight(self) -> bool:
        """One change at a time: the last configuration entry is not committed yet. (A seam the
        mutation test breaks on purpose: overlapping changes must be caught.)"""
        return self._confs[-1].index > self.commit

    def _leader_ready_for_change(self) -> bool:
        """The single-server change erratum (Ongaro, raft-dev 2015): a leader may propose a change
        only once an entry of its own term is committed."""
        return self._log.term(self.commit) == self.term
