"""Helpers for tests that run real local clusters: the CLI as a subprocess and in-process, with a
private state dir and cluster name, and a teardown that stops only this cluster's processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from raftctl.backends.base import NullReporter
from raftctl.backends.local.backend import LocalBackend
from raftctl.backends.local.procs import same_process, signal_group
from raftctl.backends.local.state import SUPERVISOR_MARKER
from raftctl.main import app

_runner = CliRunner()


@dataclass
class Local:
    """One test cluster: its state root and name, and ways to run raftctl against it."""

    root: Path
    name: str

    @classmethod
    def new(cls, root: Path) -> Local:
        return cls(root, f"t{uuid.uuid4().hex[:8]}")

    @property
    def env(self) -> dict[str, str]:
        return {"RAFTCTL_STATE_DIR": str(self.root), "RAFTCTL_NAME": self.name}

    @property
    def backend(self) -> LocalBackend:
        return LocalBackend(self.name, state_root=self.root)

    def cli(self, *args: str) -> Result:
        """raftctl through Typer's CliRunner (in this process)."""
        return _runner.invoke(app, list(args), env=self.env)

    def sh(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """raftctl as a real subprocess (`python -m raftctl`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTCTL_")}
        env.update(self.env, COLUMNS="200")
        return subprocess.run(
            [sys.executable, "-m", "raftctl", *args],
            env=env,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        """Run raftctl with --output json; `status` may exit 1 (unhealthy) and still answer."""
        res = self.sh(*args, "--output", "json")
        ok = (0, 1) if args[0] == "status" else (0,)
        assert res.returncode in ok and res.stdout, res.stderr
        return json.loads(res.stdout)

    def pids(self) -> dict[str, int]:
        rt = self.backend.runtime()
        out = {rid: ident.pid for rid, ident in rt.replicas.items()}
        if rt.supervisor:
            out["supervisor"] = rt.supervisor.pid
        return out

    def teardown(self) -> None:
        """Stop this cluster; whatever survives `down` is killed by its recorded identity."""
        backend = self.backend
        rt = backend.runtime()
        try:
            backend.down(purge=True, reporter=NullReporter())
        finally:
            if rt.supervisor and same_process(rt.supervisor, SUPERVISOR_MARKER):
                signal_group(rt.supervisor, signal.SIGKILL, SUPERVISOR_MARKER)
            for ident in rt.replicas.values():
                signal_group(ident, signal.SIGCONT)
                signal_group(ident, signal.SIGKILL)
