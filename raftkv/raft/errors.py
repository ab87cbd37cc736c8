"""errors.py — the one exception tree of the Raft core.

::

    RaftError
    ├── NotLeader(leader_hint)            propose / read_index / transfer_leadership on a non-leader
    ├── ProposalDropped                   the leader cannot take proposals now (leadership transfer)
    ├── ConfChangeRefused(reason)         a membership change cannot be proposed now (see reason)
    ├── ConfigError (also ValueError)     a bad Config, RestoredState or argument
    ├── MessageDecodeError (also ValueError)  decode_message got malformed or unknown input
    └── InvariantViolation                a safety invariant failed: a bug, never swallowed

``_check(cond, fmt, *args)`` is the core's assertion: unlike ``assert`` it is never stripped by
``python -O`` (TigerBeetle keeps its assertions on in production, and so do we).
"""

from __future__ import annotations

__all__ = [
    "ConfChangeRefused",
    "ConfigError",
    "InvariantViolation",
    "MessageDecodeError",
    "NotLeader",
    "ProposalDropped",
    "RaftError",
]


class RaftError(Exception):
    """Base class of every error the Raft core raises."""


class NotLeader(RaftError):
    """This node is not the leader; ``leader_hint`` is the leader it knows of (or None)."""

    def __init__(self, leader_hint: str | None) -> None:
        self.leader_hint = leader_hint
        hint = leader_hint if leader_hint is not None else "unknown"
        super().__init__(f"not the leader (leader: {hint})")


class ProposalDropped(RaftError):
    """The leader refused the proposal (e.g. a leadership transfer is in progress); retry later."""


class ConfChangeRefused(RaftError):
    """The leader refused a membership change. ``reason`` is one of:

    - ``"in-flight"``: another change is appended but not committed yet (one at a time, §4.1);
    - ``"leader-not-ready"``: no entry of the leader's term is committed yet (the single-server
      change erratum: a new leader must commit its term's first entry before any change);
    - ``"invalid"``: the change makes no sense for the current configuration (the text says why).
    """

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        super().__init__(text)


class ConfigError(RaftError, ValueError):
    """A Config, RestoredState or call argument is invalid."""


class MessageDecodeError(RaftError, ValueError):
    """``decode_message`` rejected its input; the text says which field and why."""


class InvariantViolation(RaftError):
    """A Raft safety invariant does not hold: a bug in the core (or its driver)."""


def _check(cond: bool, fmt: str, *args: object) -> None:
    """Raise InvariantViolation(fmt % args) unless ``cond`` holds."""
    if not cond:
        raise InvariantViolation(fmt % args if args else fmt)
