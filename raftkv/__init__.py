"""raftkv: a replicated key/value store built on Raft.

Layout: ``raftkv.raft`` is the pure consensus core (no I/O), ``raftkv.storage`` the durable
write-ahead log and snapshots, ``raftkv.kv`` the key/value state machine, ``raftkv.server`` the
Flask/gunicorn node that ties them together.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
