"""create_app injects the fatal-error handler: a storage failure exits the node's process with
gunicorn's WORKER_BOOT_ERROR code (nothing writes the driver's private fields from outside)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from raftkv.server.gunicorn_app import FATAL_EXIT_CODE

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import sys, time
    from raftkv.config import load_config
    from raftkv.errors import OutcomeUnknown
    from raftkv.kv import Command, Op
    from raftkv.server import create_app, node_of

    cfg = load_config({"id": "solo", "data_dir": sys.argv[1], "election_ms": "100",
                       "heartbeat_ms": "10"}, {}, "solo")
    node = node_of(create_app(cfg))
    node.start()
    deadline = time.monotonic() + 20
    while node.status().role != "leader":
        assert time.monotonic() < deadline, "no leader"
        time.sleep(0.01)

    def broken(*args):
        raise OSError(5, "Input/output error")

    node._storage.save = broken  # the disk fails under the next write
    try:
        node.propose(Command(op=Op.PUT, key="a", value="1"), timeout=10)
    except OutcomeUnknown:
        pass
    time.sleep(10)
    sys.exit(0)  # not reached: on_fatal exits the process first
""")


def test_a_storage_failure_exits_the_process_with_the_fatal_code(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "d")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == FATAL_EXIT_CODE, proc.stderr[-2000:]
    assert "event=fatal" in proc.stderr
