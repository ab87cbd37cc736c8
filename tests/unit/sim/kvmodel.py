"""kvmodel.py — the simulated state machine (the oracle) and the real one it shadows.

Commands are real raftkv KV commands (``raftkv.kv.commands.encode_command``): a put of a unique
value (``w<n>``) with a client session ``(client_id, seq)``. A client whose write had an unknown
outcome may retry it with the same session, so one write can sit in the log more than once; the
KV state machine applies it at most once (exactly-once), and so does this model.

``KVState`` is the model: a dict, the session table, the last applied (index, term), and a
running digest over everything applied (``digest_i = blake2b(digest_{i-1} | index | term | kind |
data)``): two replicas with equal digests applied the same prefix, so the checkers compare whole
prefixes in O(1). Each replica also drives the real ``raftkv.kv.statemachine.KVStateMachine``
in lockstep (``shadow``) and checks it agrees with the model after every entry; snapshots carry
both, so the real state machine's snapshot/restore is exercised across crashes and
InstallSnapshot too.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from raftkv.kv.commands import Command, Op, Outcome, decode_command, encode_command
from raftkv.kv.statemachine import KVStateMachine
from raftkv.raft.types import Entry, EntryKind

__all__ = ["KVState", "ShadowMismatch", "decode_put", "encode_put"]

_EMPTY_DIGEST = b"\x00" * 8


class ShadowMismatch(AssertionError):
    """The real KV state machine disagrees with the model."""


def encode_put(key: str, value: str, client_id: str, seq: int) -> bytes:
    return encode_command(Command(op=Op.PUT, key=key, value=value, client_id=client_id, seq=seq))


def decode_put(data: bytes) -> tuple[str, str, str, int]:
    """(key, value, client_id, seq) of a put written by the simulation's clients."""
    cmd = decode_command(data)
    if cmd.op is not Op.PUT or cmd.value is None or cmd.client_id is None or cmd.seq is None:
        raise ValueError(f"not a simulation put: {data!r}")
    return cmd.key, cmd.value, cmd.client_id, cmd.seq


def chain_digest(prev: bytes, entry: Entry) -> bytes:
    h = hashlib.blake2b(prev, digest_size=8)
    h.update(b"%d:%d:%d:" % (entry.index, entry.term, int(entry.kind)))
    h.update(entry.data)
    return h.digest()


@dataclass(slots=True)
class KVState:
    """One replica's applied state (model + the real state machine in lockstep)."""

    kv: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)  # "client/seq" -> first index
    index: int = 0
    term: int = 0
    digest: bytes = _EMPTY_DIGEST
    shadow: KVStateMachine = field(default_factory=KVStateMachine)

    def apply(self, entry: Entry) -> int | None:
        """Apply the next committed entry (the caller checks it is ``index + 1``).

        Returns the index at which this command first took effect if it is a duplicate
        (a retried write already applied), else None.
        """
        dup: int | None = None
        if entry.kind is EntryKind.NORMAL and entry.data:
            key, value, client, seq = decode_put(entry.data)
            session = f"{client}/{seq}"
            dup = self.sessions.get(session)
            if dup is None:
                self.kv[key] = value
                self.sessions[session] = entry.index
            result = self.shadow.apply(entry.index, entry.term, entry.data)
            got = self.shadow.get(key)
            want_index = dup if dup is not None else entry.index
            if (
                result.outcome is not Outcome.OK
                or result.index != want_index
                or got is None
                or got[0] != self.kv[key]
            ):
                raise ShadowMismatch(
                    f"real state machine: apply {entry.index}/{entry.term} {key}={value} "
                    f"({session}) returned {result}, stored {got}; model says {key}="
                    f"{self.kv[key]!r} first applied at {want_index}"
                )
        else:
            self.shadow.apply_noop(entry.index, entry.term)
        self.index = entry.index
        self.term = entry.term
        self.digest = chain_digest(self.digest, entry)
        return dup

    def serialize(self) -> bytes:
        doc = {
            "index": self.index,
            "term": self.term,
            "digest": self.digest.hex(),
            "kv": self.kv,
            "sessions": self.sessions,
            "shadow": base64.b64encode(self.shadow.snapshot()).decode(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> KVState:
        doc = json.loads(data)
        shadow = KVStateMachine()
        shadow.restore(base64.b64decode(doc["shadow"]))
        state = cls(
            kv=dict(doc["kv"]),
            sessions=dict(doc["sessions"]),
            index=int(doc["index"]),
            term=int(doc["term"]),
            digest=bytes.fromhex(doc["digest"]),
            shadow=shadow,
        )
        if (
            shadow.applied_index != state.index
            or {k: v[0] for k, v in ((k, shadow.get(k)) for k in state.kv) if v is not None}
            != state.kv
        ):
            raise ShadowMismatch(
                f"real state machine restored at {shadow.applied_index} with other data than "
                f"the model at {state.index}"
            )
        return state
