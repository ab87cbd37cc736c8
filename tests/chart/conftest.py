"""Fixtures for the chart tests: one loaded chart (Helm's Go engine via helm-python-sdk) per
session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart.chart_render import load_chart


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    try:
        import helm_python  # noqa: F401
    except (ImportError, OSError) as err:  # OSError: no native libhelm_c for this platform
        pytest.skip(f"helm-python-sdk (Helm's Go engine) is not importable here: {err}")
    handle = load_chart()
    try:
        yield handle
    finally:
        handle.close()
