"""The scale benchmark (benchmarks/bench_scale.py) runs end to end at a small N and prints every
figure (issue 14: CI proves it works; the figures themselves are recorded from real runs in
docs/storage.md, not asserted here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cluster import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")


def test_bench_scale_prints_every_figure(tmp_path: Path) -> None:
    from benchmarks.bench_scale import FIGURES  # the repository root is on sys.path

    out = tmp_path / "scale.json"
    # a small snapshot interval and chunk size: the wiped follower must catch up from a
    # snapshot streamed in several chunks, not from the log
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "bench_scale.py"),
            "--keys",
            "2000",
            "--phase-seconds",
            "2",
            "--threads",
            "16",
            "--out",
            str(out),
            "--node-arg=--snapshot-every=500",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    printed = dict(re.findall(r"^figure (\w+): (\S+)$", proc.stdout, re.M))
    assert set(printed) == set(FIGURES), proc.stdout
    for name, value in printed.items():
        assert float(value) >= 0, (name, value)
    fig = json.loads(out.read_text())
    assert fig["keys"] == 2000
    assert fig["rss_mib"] > fig["idle_rss_mib"] > 0
    assert fig["disk_bytes_per_key"] > 100  # at least the values themselves
    assert fig["snapshot_mib"] > 0.1 and fig["snapshot_seconds"] > 0
    assert fig["driver_stall_max_ms"] > 0
    assert fig["catchup_seconds"] > 0 and fig["restart_serving_seconds"] > 0
