"""waiters.py — a one-shot result slot a request thread blocks on and the driver resolves.

Contract: a ``Waiter`` is resolved (``resolve``/``fail``) at most once, by the driver thread; the
request thread calls ``wait(timeout)`` once and then reads ``value``/``error``. It is a single
pre-acquired ``threading.Lock`` — the cheapest blocking primitive CPython has (no Condition, no
thread hand-off): ``resolve`` releases it, ``wait`` acquires it. A second resolution is ignored.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["Waiter"]

T = TypeVar("T")


class Waiter(Generic[T]):
    __slots__ = ("_done", "_lock", "error", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._done = False
        self.value: T | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done

    def resolve(self, value: T) -> None:
        if self._done:
            return
        self._done = True
        self.value = value
        self._lock.release()

    def fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._done = True
        self.error = error
        self._lock.release()

    def wait(self, timeout: float) -> bool:
        """Block until resolved or ``timeout`` seconds pass; True if resolved."""
        return self._lock.acquire(timeout=max(timeout, 0.0))
