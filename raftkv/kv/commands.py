"""commands.py — the KV commands carried in Raft log entries, and their results.

Contract: ``encode_command(cmd)`` gives the bytes a ``NORMAL`` entry carries;
``decode_command(data)`` gives it back or raises ``CommandDecodeError`` (a ``ValueError``) with a
clear text. The encoding is compact JSON with short field names; it is deterministic (the same
command always encodes to the same bytes) and versioned (``"v": 1``).

A command may carry a client session (``client_id``, ``seq``) from the ``X-Request-Id`` header:
the state machine then applies it at most once (see statemachine.py).

``Result`` is what applying a command produced; it is recorded in the session table for
retries, so it is a plain value that round-trips through JSON (``to_json``/``from_json``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Command",
    "CommandDecodeError",
    "Op",
    "Outcome",
    "Result",
    "decode_command",
    "encode_command",
    "fingerprint",
]


class CommandDecodeError(ValueError):
    """Entry data is not a valid KV command."""


class Op(enum.Enum):
    PUT = "put"
    DELETE = "del"


class Outcome(enum.Enum):
    OK = "ok"  # applied (put stored / delete removed an existing key)
    NOT_FOUND = "not_found"  # delete of an absent key (nothing changed)
    CAS_FAILED = "cas_failed"  # compare-and-set: current value differs or key absent
    INVALID = "invalid"  # the entry did not decode (never produced by this version)
    STALE_REQUEST = "stale_request"  # X-Request-Id older than the session window
    SESSION_EXPIRED = "session_expired"  # the client's session was evicted; seq not newer
    REQUEST_ID_REUSED = "request_id_reused"  # (client_id, seq) recorded for another request


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One client write. ``prev_value`` set (even to "") makes a put a compare-and-set."""

    op: Op
    key: str
    value: str | None = None
    prev_value: str | None = None
    client_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What applying a command did. ``value`` is the new value (put) or the current one (CAS
    failure); ``index``/``term`` are the entry's (for a CAS failure ``index`` is the key's last
    modification index, 0 if absent)."""

    outcome: Outcome
    key: str
    value: str | None
    index: int
    term: int

    def to_json(self) -> list[Any]:
        return [self.outcome.value, self.key, self.value, self.index, self.term]

    @classmethod
    def from_json(cls, raw: Any) -> Result:
        try:
            outcome, key, value, index, term = raw
            return cls(
                outcome=Outcome(outcome),
                key=str(key),
                value=value,
                index=int(index),
                term=int(term),
            )
        except (TypeError, ValueError) as err:
            raise CommandDecodeError(f"bad recorded result {raw!r}: {err}") from None


def encode_command(cmd: Command) -> bytes:
    """Bytes for a log entry (compact JSON, deterministic field order)."""
    obj: dict[str, Any] = {"v": 1, "op": cmd.op.value, "k": cmd.key}
    if cmd.value is not None:
        obj["val"] = cmd.value
    if cmd.prev_value is not None:
        obj["prev"] = cmd.prev_value
    if cmd.client_id is not None:
        obj["c"] = cmd.client_id
        obj["s"] = cmd.seq
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def fingerprint(cmd: Command) -> str:
    """What makes two requests "the same request" for exactly-once: op, key, value, condition.

    A short stable digest (the same on every replica and every version), recorded with the result
    so that a retry under the same ``(client_id, seq)`` with another body is told apart.
    """
    raw = json.dumps(
        [cmd.op.value, cmd.key, cmd.value, cmd.prev_value],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def decode_command(data: bytes) -> Command:
    """Parse entry bytes; raise ``CommandDecodeError`` on anything malformed."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as err:  # RecursionError: nesting too deep
        raise CommandDecodeError(f"command is not JSON: {err}") from None
    if not isinstance(obj, dict) or obj.get("v") != 1:
        raise CommandDecodeError("command must be a JSON object with v=1")
    try:
        op = Op(obj.get("op"))
    except ValueError:
        raise CommandDecodeError(f"unknown command op {obj.get('op')!r}") from None
    key = obj.get("k")
    value = obj.get("val")
    prev = obj.get("prev")
    client = obj.get("c")
    seq = obj.get("s")
    if not isinstance(key, str) or not key:
        raise CommandDecodeError("command key must be a non-empty string")
    if op is Op.PUT and not isinstance(value, str):
        raise CommandDecodeError("put needs a string value")
    if op is Op.DELETE and value is not None:
        raise CommandDecodeError("delete carries no value")
    if prev is not None and not isinstance(prev, str):
        raise CommandDecodeError("prev must be a string")
    if client is not None and (not isinstance(client, str) or not isinstance(seq, int)):
        raise CommandDecodeError("client session needs a string client id and an integer seq")
    return Command(op=op, key=key, value=value, prev_value=prev, client_id=client, seq=seq)
