"""The package's public surface: version string and declared exports."""

import re

import raftctl
import raftkv


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", raftkv.__version__)


def test_raftctl_shares_the_version() -> None:
    assert raftctl.__version__ == raftkv.__version__
