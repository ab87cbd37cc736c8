"""backends — where a raftkv cluster runs: ``local`` (processes on this machine) or ``kind``.

Both implement ``raftctl.backends.base.Backend``; ``endpoints`` wraps a plain URL list (no target).
"""

from raftctl.backends.base import Backend, Replica, Reporter

__all__ = ["Backend", "Replica", "Reporter"]
