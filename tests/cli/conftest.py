"""Fixtures for raftctl's tests: a real 3-node cluster behind fault-injecting relays
(tests/cli/realnodes.py) and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.realnodes import RealCluster, real_cluster


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[RealCluster]:
    """A real 3-node cluster (raft-0 leads), each node behind a fault-injecting relay."""
    with real_cluster(tmp_path) as cluster:
        yield cluster
