"""messages.py — the Raft messages, as plain immutable data.

Every message is a frozen, slotted, keyword-only dataclass with ``src``, ``dst`` and ``term`` and a
one-line ``describe()`` (used in DEBUG logs and golden tests). ``Message`` is their Union; the JSON
form lives in codec.py.

- ``RequestVote``: a (pre-)vote request (Raft §5.2, thesis §9.6 pre-vote). For a pre-vote
  ``term`` is the term the sender *would* campaign in; nobody changes term because of it.
  ``transfer`` marks a campaign started by ``TimeoutNow`` (thesis §3.10): it bypasses the
  followers' leader lease.
- ``RequestVoteResponse``: ``granted``; ``pre_vote`` echoes the request's kind.
- ``AppendEntries`` (Raft §5.3): ``entries`` follow (``prev_index``, ``prev_term``);
  ``commit`` is the leader's commit index.
- ``AppendEntriesResponse``: on success ``index`` is the last index now known to match the leader.
  On ``reject``, ``index`` is the rejected ``prev_index`` and (``hint_term``, ``hint_index``) the
  fast backtracking hint: the term of the follower's conflicting entry and the first index it holds
  for that term, or (0, follower last index + 1) if its log is too short. Also acknowledges
  snapshots.
- ``InstallSnapshot`` (Raft §7): the whole snapshot in one message; the answer is an
  AppendEntriesResponse.
- ``Heartbeat``: leader liveness + commit (never above the follower's match) + ``context``, the
  ReadIndex round being confirmed (0 = none). ``HeartbeatResponse`` echoes ``context``.
- ``TimeoutNow``: leadership transfer: "start an election now" (thesis §3.10).
- ``ReadIndex``: a follower asks its leader for a read index (thesis §6.4, etcd's MsgReadIndex):
  ``request_id`` is the follower's own id for the read. ``ReadIndexResponse`` carries the leader's
  commit index of when it got the request, released once a quorum confirmed its leadership; the
  follower serves the read once it applied ``index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from raftkv.raft.types import Entry, Index, NodeId, Snapshot, Term

__all__ = [
    "MESSAGE_TYPES",
    "AppendEntries",
    "AppendEntriesResponse",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "Message",
    "ReadIndex",
    "ReadIndexResponse",
    "RequestVote",
    "RequestVoteResponse",
    "TimeoutNow",
    "describe_entries",
]


def describe_entries(entries: tuple[Entry, ...]) -> str:
    """``[]``, ``[5/2]`` or ``[5/2..9/3]`` (index/term of the first and last entry)."""
    if not entries:
        return "[]"
    a, b = entries[0], entries[-1]
    if len(entries) == 1:
        return f"[{a.index}/{a.term}]"
    return f"[{a.index}/{a.term}..{b.index}/{b.term}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVote:
    src: NodeId
    dst: NodeId
    term: Term
    last_log_index: Index
    last_log_term: Term
    pre_vote: bool = False
    transfer: bool = False

    def describe(self) -> str:
        kind = "PreVote" if self.pre_vote else "Vote"
        extra = " transfer" if self.transfer else ""
        return (
            f"{self.src}->{self.dst} RequestVote({kind}) term={self.term} "
            f"log={self.last_log_index}/{self.last_log_term}{extra}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVoteResponse:
    src: NodeId
    dst: NodeId
    term: Term
    granted: bool
    pre_vote: bool = False

    def describe(self) -> str:
        kind = "PreVote" if self.pre_vote else "Vote"
        verdict = "granted" if self.granted else "rejected"
        return f"{self.src}->{self.dst} RequestVoteResponse({kind}) term={self.term} {verdict}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries:
    src: NodeId
    dst: NodeId
    term: Term
    prev_index: Index
    prev_term: Term
    entries: tuple[Entry, ...] = ()
    commit: Index = 0

    def describe(self) -> str:
        return (
            f"{self.src}->{self.dst} AppendEntries term={self.term} "
            f"prev={self.prev_index}/{self.prev_term} entries={describe_entries(self.entries)} "
            f"commit={self.commit}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntriesResponse:
    src: NodeId
    dst: NodeId
    term: Term
    index: Index
    reject: bool = False
    hint_index: Index = 0
    hint_term: Term = 0

    def describe(self) -> str:
        if self.reject:
            return (
                f"{self.src}->{self.dst} AppendEntriesResponse term={self.term} rejected "
                f"prev={self.index} hint={self.hint_index}/{self.hint_term}"
            )
        return f"{self.src}->{self.dst} AppendEntriesResponse term={self.term} index={self.index}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot:
    src: NodeId
    dst: NodeId
    term: Term
    snapshot: Snapshot

    def describe(self) -> str:
        m = self.snapshot.meta
        return (
            f"{self.src}->{self.dst} InstallSnapshot term={self.term} "
            f"snapshot={m.index}/{m.term} bytes={len(self.snapshot.data)}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    src: NodeId
    dst: NodeId
    term: Term
    commit: Index = 0
    context: int = 0

    def describe(self) -> str:
        ctx = f" ctx={self.context}" if self.context else ""
        return f"{self.src}->{self.dst} Heartbeat term={self.term} commit={self.commit}{ctx}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatResponse:
    src: NodeId
    dst: NodeId
    term: Term
    context: int = 0

    def describe(self) -> str:
        ctx = f" ctx={self.context}" if self.context else ""
        return f"{self.src}->{self.dst} HeartbeatResponse term={self.term}{ctx}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutNow:
    src: NodeId
    dst: NodeId
    term: Term

    def describe(self) -> str:
        return f"{self.src}->{self.dst} TimeoutNow term={self.term}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadIndex:
    src: NodeId
    dst: NodeId
    term: Term
    request_id: str

    def describe(self) -> str:
        return f"{self.src}->{self.dst} ReadIndex term={self.term} id={self.request_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadIndexResponse:
    src: NodeId
    dst: NodeId
    term: Term
    request_id: str
    index: Index

    def describe(self) -> str:
        return (
            f"{self.src}->{self.dst} ReadIndexResponse term={self.term} id={self.request_id} "
            f"index={self.index}"
        )


Message = Union[  # noqa: UP007 - a runtime alias used in isinstance-free dispatch and annotations
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    Heartbeat,
    HeartbeatResponse,
    TimeoutNow,
    ReadIndex,
    ReadIndexResponse,
]

MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        RequestVote,
        RequestVoteResponse,
        AppendEntries,
        AppendEntriesResponse,
        InstallSnapshot,
        Heartbeat,
        HeartbeatResponse,
        TimeoutNow,
        ReadIndex,
        ReadIndexResponse,
    )
}
