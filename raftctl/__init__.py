"""raftctl: the admin CLI for raftkv clusters (local processes or Kubernetes via kind)."""

from raftkv import __version__

__all__ = ["__version__"]
