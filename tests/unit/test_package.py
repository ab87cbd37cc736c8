"""The package's public surface: version string and declared exports."""

import re
from pathlib import Path

import yaml

import raftctl
import raftkv

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", raftkv.__version__)


def test_raftctl_shares_the_version() -> None:
    assert raftctl.__version__ == raftkv.__version__


def test_the_chart_ships_this_version() -> None:
    """The version lives in raftkv/__init__.py; the chart's appVersion (the default image tag)
    and version follow it, so a release is one edit plus this test."""
    chart = yaml.safe_load((ROOT / "helm/raftkv/Chart.yaml").read_text())
    assert chart["appVersion"] == raftkv.__version__
    assert chart["version"] == raftkv.__version__
