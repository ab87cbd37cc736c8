"""Fixtures for raftctl's tests: a real 3-node cluster behind fault-injecting relays
(tests/cli/realnodes.py) and helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.realnodes import RealCluster, real_cluster


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``pred`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for: {what}")
        time.sleep(0.05)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[RealCluster]:
    """A real 3-node cluster (raft-0 leads), each node behind a fault-injecting relay."""
    with real_cluster(tmp_path) as cluster:
        yield cluster
