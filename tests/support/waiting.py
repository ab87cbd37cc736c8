"""waiting.py — the one way tests wait: poll a condition until it holds, or fail naming it.

``wait_until(pred, timeout, what)`` calls ``pred`` every ``interval`` seconds until it returns
something truthy, and returns that value (so a predicate can hand back what it found: a leader's
index, a reply). A transient error from ``pred`` (a node not listening yet, a half-written reply)
counts as "not yet" (``retry_on``, default ``TRANSIENT``); the last one is named in the failure.
Any other exception, such as an ``AssertionError`` the predicate raises on purpose (a process
that died), fails at once.
When time is up it raises ``AssertionError("timed out after <t>s waiting for <what> ...")``
followed by ``on_fail()`` (e.g. the node logs).

``retry(attempt, done, timeout)`` is the other shape: repeat an action until its result is
acceptable, and return the last result either way (the caller asserts on it).

No blind sleeps: a test that needs something to happen waits for exactly that. A sleep remains
only where a test checks that something does NOT happen within a while.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["TRANSIENT", "retry", "wait_until"]

T = TypeVar("T")

# Errors that mean "not yet" while a server starts, restarts or changes leader.
TRANSIENT: tuple[type[Exception], ...] = (OSError, http.client.HTTPException, ValueError, KeyError)


def wait_until(
    pred: Callable[[], T],
    timeout: float,
    what: str,
    on_fail: Callable[[], str] | None = None,
    *,
    interval: float = 0.05,
    retry_on: tuple[type[Exception], ...] = TRANSIENT,
) -> T:
    """Poll ``pred`` until it returns a truthy value (returned) or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except retry_on as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = on_fail() if on_fail else ""
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})\n{extra}"
            )
        time.sleep(interval)


def retry(
    attempt: Callable[[], T], done: Callable[[T], bool], timeout: float, *, interval: float = 0.1
) -> T:
    """Call ``attempt`` until ``done(result)`` or ``timeout`` s passed; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(interval)
