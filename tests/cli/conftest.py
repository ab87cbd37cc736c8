"""Fixtures for raftctl's tests: a fake node cluster (unit tests) and helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.cli.fakenode import FakeCluster


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``pred`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for: {what}")
        time.sleep(0.05)


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    cluster = FakeCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
