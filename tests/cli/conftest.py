"""Fixtures for raftctl's tests: a fake node cluster (unit tests) and helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.fakenode import FakeCluster


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    cluster = FakeCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
