"""raftkv.kv — the key/value state machine driven by the Raft log (deterministic, no I/O)."""

from raftkv.kv.commands import (
    Command,
    CommandDecodeError,
    Op,
    Outcome,
    Result,
    decode_command,
    encode_command,
    fingerprint,
)
from raftkv.kv.statemachine import KVStateMachine, SnapshotDecodeError

__all__ = [
    "Command",
    "CommandDecodeError",
    "KVStateMachine",
    "Op",
    "Outcome",
    "Result",
    "SnapshotDecodeError",
    "decode_command",
    "encode_command",
    "fingerprint",
]
