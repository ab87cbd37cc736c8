"""Run every atheris target briefly (when atheris is installed): each must survive its runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cluster import subprocess_env

TARGETS = ["codec", "records", "segment", "snapshot", "request_id", "http_response", "kv_command"]
SCRIPT = Path(__file__).with_name("atheris_targets.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris is not installed"
)


@pytest.mark.parametrize("target", TARGETS)
def test_atheris_target(target: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            target,
            "-runs=3000",
            "-max_len=2048",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 3000 runs" in proc.stderr, proc.stderr[-2000:]
