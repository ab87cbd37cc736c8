"""progress.py — the leader's view of one follower (etcd's tracker/progress design).

States:
- PROBE: we do not know where the follower's log matches ours. Send at most one AppendEntries, then
  wait (``probe_sent``) for its answer or for the next heartbeat response.
- REPLICATE: the follower is keeping up; pipeline appends optimistically (``next`` moves when
  sent), at most ``max_inflight`` un-acknowledged messages at a time (``inflight`` holds each
  one's last index).
- SNAPSHOT: the entries the follower needs were compacted; an InstallSnapshot is on its way.
  Wait for its acknowledgement (or ``snapshot_elapsed`` reaching the election timeout, then probe
  again).

Invariant: ``match < next``; ``match`` never decreases within a term, except when the follower
proves it lost entries it acknowledged (``lost_log``: a wiped disk).
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["Progress", "ProgressState"]


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = (
        "inflight",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "snapshot_elapsed",
        "state",
        "suspect_lost",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()
        self.pending_snapshot = 0
        self.snapshot_elapsed = 0
        self.recent_active = False
        # a rejection said the follower may not hold ``match`` any more; a fresh probe's answer
        # confirms it (lost_log) or refutes it (an acknowledgement): one rejection alone may be
        # an old one, overtaken by the acknowledgements of appends it was reordered with
        self.suspect_lost = False

    def __repr__(self) -> str:
        return (
            f"Progress(match={self.match}, next={self.next}, state={self.state.value}, "
            f"inflight={len(self.inflight)})"
        )

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_elapsed = 0
        self.probe_sent = False
        self.inflight.clear()

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged its log matches ours up to ``index``. True if match moved."""
        updated = False
        if index >= self.match:
            self.suspect_lost = False
        if index > self.match:
            self.match = index
            updated = True
            self.probe_sent = False
        if index + 1 > self.next:
            self.next = index + 1
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, next_hint: int) -> bool:
        """The follower rejected an append whose prev index was ``rejected``; ``next_hint`` is
        where its log can match ours (the leader's reading of its hint). False if stale.

        On True the progress is in PROBE state with ``next`` moved back to the hinted index, but
        never below ``match + 1`` — unless the follower no longer holds the entry at ``match``
        (it lost entries it acknowledged: a wiped or rolled-back disk). That takes two answers:
        a rejection of the append right after ``match`` (or a hint at or below it) makes the
        leader suspect it and probe at ``match`` afresh; a rejection of that probe with a hint
        at or below ``match`` confirms it, and ``match`` is reset (``lost_log``).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected < self.match:
                return False  # an answer to an older probe, overtaken by later acks
            if rejected == self.match:
                # refused right after match: lost entries, or an old answer reordered with the
                # acknowledgement that moved match here; a fresh probe at match tells
                self.suspect_lost = True
            self.state = ProgressState.PROBE
            self.inflight.clear()
            self.probe_sent = False
            self.next = max(self.match + 1, min(rejected, next_hint))
            return True
        if self.next - 1 != rejected:
            return False
        if next_hint <= self.match:
            if self.suspect_lost and rejected == self.match:
                # the answer to our fresh probe at match: the follower's log cannot match there
                self.lost_log(rejected, next_hint)
                return True
            self.suspect_lost = True
        self.next = max(self.match + 1, min(rejected, next_hint))
        self.probe_sent = False
        return True

    def lost_log(self, rejected: int, next_hint: int) -> None:
        """The follower's log no longer holds what it acknowledged up to ``match``: forget it and
        probe from the hint. Lowering ``match`` is safe: the commit index it helped to compute
        never goes back; this follower only stops counting toward new commits until it holds the
        entries again (Raft assumes durable acknowledgements; a wiped voter breaks that
        assumption, docs/scale.md "A wiped follower")."""
        self.match = 0
        self.suspect_lost = False
        self.state = ProgressState.PROBE
        self.inflight.clear()
        self.probe_sent = False
        self.pending_snapshot = 0
        self.next = max(1, min(rejected, next_hint))

    def is_paused(self, max_inflight: int) -> bool:
        state = self.state
        if state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        if state is ProgressState.PROBE:
            return self.probe_sent
        return True
