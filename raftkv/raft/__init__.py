"""raftkv.raft — the pure Raft consensus core (no I/O). See docs/contracts.md."""
