"""Fixtures for the integration tests (real ``raftkv serve`` processes on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ports import ReservedPort


@pytest.fixture
def reserved_port() -> Iterator[int]:
    """A port on 127.0.0.1 that stays reserved for this test (``tests.support.ports``): a node the
    test starts with ``--port`` binds it; nothing else can take it."""
    with ReservedPort() as port:
        yield port.port
