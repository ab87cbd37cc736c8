"""kvmodel.py — the simulated state machine: a tiny key/value map plus a digest chain.

Commands are ``b"put <key> <value>"``; values are unique per run (``w<n>``), so a read's result
names exactly one write. The state machine keeps a running digest over everything it applied
(``digest_i = blake2b(digest_{i-1} | index | term | kind | data)``), so two replicas that applied
the same prefix have the same digest and the checkers can compare whole prefixes in O(1).

Snapshots serialize ``{index, term, digest, kv}`` as canonical JSON: a node rebuilt from a snapshot
carries the digest of the prefix the snapshot replaced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from raftkv.raft.types import Entry, EntryKind

__all__ = ["KVState", "decode_put", "encode_put"]

_EMPTY_DIGEST = b"\x00" * 8


def encode_put(key: str, value: str) -> bytes:
    return f"put {key} {value}".encode()


def decode_put(data: bytes) -> tuple[str, str]:
    """Split a command into (key, value); raises ValueError on anything else."""
    verb, key, value = data.decode().split(" ")
    if verb != "put":
        raise ValueError(f"unknown command {data!r}")
    return key, value


def chain_digest(prev: bytes, entry: Entry) -> bytes:
    h = hashlib.blake2b(prev, digest_size=8)
    h.update(b"%d:%d:%d:" % (entry.index, entry.term, int(entry.kind)))
    h.update(entry.data)
    return h.digest()


@dataclass(slots=True)
class KVState:
    """One replica's applied state: the map, the last applied (index, term) and the digest."""

    kv: dict[str, str] = field(default_factory=dict)
    index: int = 0
    term: int = 0
    digest: bytes = _EMPTY_DIGEST

    def apply(self, entry: Entry) -> None:
        """Apply the next committed entry (the caller checks it is ``index + 1``)."""
        if entry.kind is EntryKind.NORMAL and entry.data:
            key, value = decode_put(entry.data)
            self.kv[key] = value
        self.index = entry.index
        self.term = entry.term
        self.digest = chain_digest(self.digest, entry)

    def serialize(self) -> bytes:
        doc = {"index": self.index, "term": self.term, "digest": self.digest.hex(), "kv": self.kv}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> KVState:
        doc = json.loads(data)
        return cls(
            kv=dict(doc["kv"]),
            index=int(doc["index"]),
            term=int(doc["term"]),
            digest=bytes.fromhex(doc["digest"]),
        )
