"""local — the local target as one package: real ``raftkv serve`` processes on this machine.

- ``backend``: ``LocalBackend`` (up, down, kill/stop/restore, logs; a context manager like every
  backend);
- ``state``: the cluster's on-disk state (spec, runtime, frozen set) shared with the supervisor;
- ``supervisor``: the detached process that keeps replicas running (``python -m
  raftctl.backends.local.supervisor DIR``);
- ``procs``: process identity, so raftctl never signals a process it did not start;
- ``scale``: ``raftctl scale`` on the local target.
"""

from raftctl.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
