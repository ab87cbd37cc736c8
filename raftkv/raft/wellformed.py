"""wellformed.py — the ONE definition of a well-formed AppendEntries (codec.py and node.py ask it).

An AppendEntries is well formed when ``prev_term`` <= ``term`` (and is 0 when ``prev_index`` is
0), its entries continue ``prev_index`` contiguously, their terms never decrease and never exceed
the message term, and every CONFIG entry's data decodes as a configuration change. The codec
turns a problem into a ``MessageDecodeError`` naming the field; the core ignores such a message
(a message built in-process, e.g. by the simulation, never went through the codec).
"""

from __future__ import annotations

from dataclasses import dataclass

from raftkv.raft.errors import MessageDecodeError
from raftkv.raft.membership import decode_change
from raftkv.raft.messages import AppendEntries
from raftkv.raft.types import EntryKind

__all__ = ["AppendProblem", "append_problem"]


@dataclass(frozen=True, slots=True)
class AppendProblem:
    field: str  # the offending field, e.g. ``entries[2].term``
    why: str

    def __str__(self) -> str:
        return f"field {self.field!r} {self.why}"


def append_problem(m: AppendEntries) -> AppendProblem | None:
    """The first thing wrong with ``m``, or None if it is well formed."""
    if m.prev_term > m.term:
        return AppendProblem("prev_term", f"{m.prev_term} is above the message term {m.term}")
    if m.prev_index == 0 and m.prev_term != 0:
        return AppendProblem("prev_term", "must be 0 when prev_index is 0")
    expect, last_term = m.prev_index + 1, m.prev_term
    for i, e in enumerate(m.entries):
        if e.index != expect:
            return AppendProblem(f"entries[{i}].index", f"is {e.index}, expected {expect}")
        if e.term < last_term or e.term > m.term:
            return AppendProblem(f"entries[{i}].term", f"{e.term} is out of order")
        if e.kind is EntryKind.CONFIG:
            try:
                decode_change(e.data, e.index)
            except MessageDecodeError as err:
                return AppendProblem(f"entries[{i}].data", f"is not a configuration: {err}")
        expect, last_term = expect + 1, e.term
    return None
