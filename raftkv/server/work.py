"""work.py — what other threads hand the driver thread: one frozen dataclass per kind of work.

Request threads, the transport and the snapshot writer append these to the driver's inbox
(driver.py ``_submit``); the driver takes them in order and ``match``es on the type. A work item
that expects an answer carries the ``Waiter`` its caller blocks on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from raftkv.kv import Command, Result
from raftkv.raft import ConfChange, Membership, Message
from raftkv.raft.types import SnapshotMeta
from raftkv.server.waiters import Waiter

__all__ = [
    "ChangeMembership",
    "PeerMessages",
    "Propose",
    "Shutdown",
    "SnapshotNow",
    "SnapshotWritten",
    "TransferLeadership",
    "Work",
]


@dataclass(frozen=True, slots=True)
class PeerMessages:
    """Messages from a peer. ``reply``: its POST waits for the messages we produce for it."""

    msgs: Sequence[Message]
    reply: Waiter[list[Message]] | None = None


@dataclass(frozen=True, slots=True)
class Propose:
    data: bytes  # the encoded command
    cmd: Command
    waiter: Waiter[Result]


@dataclass(frozen=True, slots=True)
class TransferLeadership:
    target: str | None  # None: the most up-to-date follower
    waiter: Waiter[str | None]


@dataclass(frozen=True, slots=True)
class ChangeMembership:
    change: ConfChange
    force: bool
    waiter: Waiter[Membership]


@dataclass(frozen=True, slots=True)
class SnapshotNow:
    waiter: Waiter[int]


@dataclass(frozen=True, slots=True)
class SnapshotWritten:
    """The ``raftkv-snapshot`` thread finished writing (``path`` None and ``error`` set: failed)."""

    meta: SnapshotMeta
    path: str | None
    size: int
    started: float  # perf_counter when the copy began
    copy_seconds: float
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop accepting writes; hand leadership over if we lead."""


Work = (
    PeerMessages
    | Propose
    | TransferLeadership
    | ChangeMembership
    | SnapshotNow
    | SnapshotWritten
    | Shutdown
)

WAITING = (Propose, TransferLeadership, ChangeMembership, SnapshotNow)  # carry a ``waiter``
