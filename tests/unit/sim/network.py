"""network.py — the simulated network: seeded loss, duplication, delay (hence reordering), cuts.

Every link is directed (``src -> dst``): a symmetric partition cuts both directions, an
asymmetric one only one. A message is dropped if its link is cut when it is sent OR when it would
be delivered (a cut also loses what is in flight). Delays are drawn per message, so messages on
one link overtake each other. A clogged link delays (instead of dropping) what is sent on it.
All randomness comes from the simulation's single ``random.Random``.

Filters (scenario tests): ``add_filter(fn)`` where ``fn(msg) -> bool`` says "drop this message".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from raftkv.raft import Message

__all__ = ["FaultRates", "SimNetwork"]

Filter = Callable[[Message], bool]


@dataclass(slots=True)
class FaultRates:
    """Per-message fault probabilities and the delay distribution (virtual time units)."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay_min: int = 1
    delay_max: int = 5
    long_delay: float = 0.0  # probability of a delay up to ``long_delay_max``
    long_delay_max: int = 100
    # extra delay (uniform 0..max) for one message type, e.g. {"RequestVoteResponse": 80}: a slow
    # path that reorders one kind of traffic against the rest
    type_delay: dict[str, int] = field(default_factory=dict)

    @classmethod
    def reliable(cls) -> FaultRates:
        return cls()


class SimNetwork:
    def __init__(self, rng: random.Random, nodes: Iterable[str], rates: FaultRates) -> None:
        self.rng = rng
        self.nodes = tuple(nodes)
        self.rates = rates
        self.cut: set[tuple[str, str]] = set()
        self.clogged: dict[tuple[str, str], int] = {}  # link -> extra delay
        self.filters: list[Filter] = []
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    # -- topology ---------------------------------------------------------------------------
    def link_up(self, src: str, dst: str) -> bool:
        return (src, dst) not in self.cut

    def cut_link(self, src: str, dst: str) -> None:
        self.cut.add((src, dst))

    def restore_link(self, src: str, dst: str) -> None:
        self.cut.discard((src, dst))

    def partition(self, *groups: Iterable[str]) -> None:
        """Nodes talk only inside their group (nodes in no group are isolated)."""
        sets = [set(g) for g in groups]
        for a in self.nodes:
            for b in self.nodes:
                if a != b and not any(a in s and b in s for s in sets):
                    self.cut.add((a, b))

    def isolate(self, node: str) -> None:
        for other in self.nodes:
            if other != node:
                self.cut.add((node, other))
                self.cut.add((other, node))

    def heal(self) -> None:
        self.cut.clear()
        self.clogged.clear()

    def add_filter(self, fn: Filter) -> Filter:
        self.filters.append(fn)
        return fn

    def remove_filter(self, fn: Filter) -> None:
        self.filters.remove(fn)

    # -- traffic ----------------------------------------------------------------------------
    def plan(self, msg: Message) -> list[int]:
        """Decide the fate of one message being sent: the delays of its copies ([] = dropped)."""
        self.sent += 1
        if not self.link_up(msg.src, msg.dst) or any(f(msg) for f in self.filters):
            self.dropped += 1
            return []
        r = self.rates
        if r.drop and self.rng.random() < r.drop:
            self.dropped += 1
            return []
        copies = 1
        if r.duplicate and self.rng.random() < r.duplicate:
            copies = 2
            self.duplicated += 1
        extra = self.clogged.get((msg.src, msg.dst), 0)
        slow = r.type_delay.get(type(msg).__name__) if r.type_delay else None
        delays = []
        for _ in range(copies):
            if r.long_delay and self.rng.random() < r.long_delay:
                d = self.rng.randint(r.delay_max, max(r.delay_max, r.long_delay_max))
            else:
                d = self.rng.randint(r.delay_min, r.delay_max)
            if slow:
                d += self.rng.randint(0, slow)
            delays.append(d + extra)
        return delays

    def deliverable(self, msg: Message) -> bool:
        """Checked again at delivery time: a link cut meanwhile loses the message in flight."""
        if self.link_up(msg.src, msg.dst):
            return True
        self.dropped += 1
        return False
