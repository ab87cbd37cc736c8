"""proposals.py — ``Proposals``: the writes proposed to the core and not answered yet.

A write is acknowledged only if the entry applied at its index has the term it was proposed in;
another term there means a new leader overwrote it (``ProposalLost``: definite). A proposal
outlives a leadership change: if its entry still commits, it is acknowledged. A snapshot installed
over a pending index answers it from the restored exactly-once table (``covered_by_snapshot``).
When the node stops or fails, a write already proposed may still commit elsewhere:
``OutcomeUnknown``, never a definite failure.

Answers are gathered during the driver's pass and released at its very end (``wake``), so the
threads that wake do not compete for the GIL with the rest of the pass. Driver thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from raftkv.errors import (
    OutcomeUnknown,
    ProposalLost,
    RaftkvError,
    RequestIdConflict,
    RequestIdReused,
    refusal_error,
)
from raftkv.kv import Command, KVStateMachine, Result, fingerprint
from raftkv.server.waiters import Waiter

__all__ = ["Proposals"]


@dataclass(slots=True)
class _Pending:
    term: int
    waiter: Waiter[Result]
    cmd: Command


class Proposals:
    def __init__(self, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost  # a metric: a write overwritten by a new leader
        self._pending: dict[int, _Pending] = {}
        # None: overwritten by a new leader (ProposalLost)
        self._answers: list[tuple[Waiter[Result], Result | RaftkvError | None]] = []

    def __bool__(self) -> bool:
        return bool(self._pending)

    def indexes(self) -> list[int]:
        return list(self._pending)

    def add(self, index: int, term: int, waiter: Waiter[Result], cmd: Command) -> None:
        """``cmd`` was proposed at ``index`` in ``term``."""
        self._pending[index] = _Pending(term, waiter, cmd)

    def applied(self, index: int, term: int, result: Result | None) -> None:
        """The entry at ``index`` (of ``term``) was applied with ``result`` (None: not a write)."""
        p = self._pending.pop(index, None)
        if p is not None:
            self._answers.append((p.waiter, result if p.term == term else None))

    def covered_by_snapshot(self, snapshot_index: int, sm: KVStateMachine) -> None:
        """A snapshot from the leader replaced the log up to ``snapshot_index``; ``sm`` was
        restored from it."""
        for index in [i for i in self._pending if i <= snapshot_index]:
            p = self._pending.pop(index)
            self._answers.append((p.waiter, self._from_sessions(sm, p.cmd, index)))

    @staticmethod
    def _from_sessions(sm: KVStateMachine, cmd: Command, index: int) -> Result | RaftkvError:
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
            recorded = sm.lookup_session(cmd.client_id, cmd.seq, fingerprint(cmd))
        except RequestIdReused as err:
            return refusal_error(err)
        except RequestIdConflict as err:
            return OutcomeUnknown(f"{where}; whether it was applied is unknown: {err}")
        if recorded is None:
            return ProposalLost(f"{where}, and that entry is another write: not applied; retry")
        return recorded

    def wake(self) -> None:
        """End of the pass: answer the writes decided during it."""
        answers, self._answers = self._answers, []
        for waiter, res in answers:
            if res is None:
                self._on_lost()
                waiter.fail(
                    ProposalLost(
                        "overwritten by a new leader before it committed: not applied; retry"
                    )
                )
            elif isinstance(res, RaftkvError):
                waiter.fail(res)
            else:
                waiter.resolve(res)

    def fail_all(self, failure: RaftkvError) -> None:
        """The node stops or failed: a write already proposed may still commit elsewhere."""
        if not self._pending:
            return
        unknown = OutcomeUnknown(
            f"{failure} after the write was proposed: it may still be committed by another "
            "leader; retry with the same X-Request-Id to learn its outcome"
        )
        for p in self._pending.values():
            p.waiter.fail(unknown)
        self._pending.clear()
