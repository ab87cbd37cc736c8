"""codec.py — messages <-> JSON-safe dicts (version 1), with strict validation on decode.

Wire form: ``{"v": 1, "type": "<class name>", <every field>}``. Entries are
``{"index", "term", "kind", "data"}``, a snapshot is ``{"meta": {"index", "term", "members"[,
"membership"]}, "data"}``; bytes travel as standard base64 text. A CONFIG entry's data must decode
as a configuration change (membership.py).

``decode_message`` never trusts its input: the object must be a dict with exactly the message's
fields (unknown or missing fields are rejected), every int is a non-negative int below 2**63 (bools
are not ints here), ids are non-empty strings of at most 256 characters, base64 must be canonical,
and an AppendEntries must be well formed (wellformed.py: the one definition, shared with the
core). Any problem raises ``MessageDecodeError`` naming the message type and field.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable
from typing import Any

from raftkv.raft.errors import MessageDecodeError
from raftkv.raft.membership import membership_from_json, membership_to_json
from raftkv.raft.messages import MESSAGE_TYPES, AppendEntries, Message
from raftkv.raft.types import Entry, EntryKind, Snapshot, SnapshotMeta
from raftkv.raft.wellformed import append_problem

__all__ = ["WIRE_VERSION", "decode_message", "encode_message"]

WIRE_VERSION = 1
_MAX_INT = (1 << 63) - 1
_MAX_ID = 256


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_entry(e: Entry) -> dict[str, Any]:
    return {"index": e.index, "term": e.term, "kind": int(e.kind), "data": _b64(e.data)}


def _encode_snapshot(s: Snapshot) -> dict[str, Any]:
    m = s.meta
    meta: dict[str, Any] = {"index": m.index, "term": m.term, "members": list(m.members)}
    if m.membership is not None:
        meta["membership"] = membership_to_json(m.membership)
    return {"meta": meta, "data": _b64(s.data)}


def encode_message(msg: Message) -> dict[str, Any]:
    """A JSON-safe dict for ``msg`` (``"v": 1``, ``"type"`` = class name, then every field)."""
    out: dict[str, Any] = {"v": WIRE_VERSION, "type": type(msg).__name__}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if f.name == "entries":
            out[f.name] = [_encode_entry(e) for e in value]
        elif f.name == "snapshot":
            out[f.name] = _encode_snapshot(value)
        else:
            out[f.name] = value
    return out


class _Decoder:
    """Field validators; ``where`` prefixes every error text."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, why: str) -> MessageDecodeError:
        return MessageDecodeError(f"{self.where}: field {field!r} {why}")

    def int_(self, field: str, v: object, minimum: int = 0) -> int:
        if type(v) is not int:
            raise self.fail(field, f"must be an integer, got {type(v).__name__}")
        if v < minimum or v > _MAX_INT:
            raise self.fail(field, f"out of range: {v} (must be {minimum}..2**63-1)")
        return v

    def bool_(self, field: str, v: object) -> bool:
        if type(v) is not bool:
            raise self.fail(field, f"must be a boolean, got {type(v).__name__}")
        return v

    def id_(self, field: str, v: object) -> str:
        if type(v) is not str:
            raise self.fail(field, f"must be a string, got {type(v).__name__}")
        if not v or len(v) > _MAX_ID:
            raise self.fail(field, f"must be 1..{_MAX_ID} characters long")
        return v

    def bytes_(self, field: str, v: object) -> bytes:
        if type(v) is not str:
            raise self.fail(field, f"must be base64 text, got {type(v).__name__}")
        try:
            return base64.b64decode(v.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as err:
            raise self.fail(field, f"is not valid base64: {err}") from err

    def obj(self, field: str, v: object, keys: set[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(field, f"must be an object, got {type(v).__name__}")
        got = set(v)
        if got != keys:
            missing, extra = sorted(keys - got), sorted(str(k) for k in got - keys)
            raise self.fail(field, f"has missing keys {missing} / unknown keys {extra}")
        return v

    def entry(self, field: str, v: object) -> Entry:
        d = self.obj(field, v, {"index", "term", "kind", "data"})
        kind = self.int_(f"{field}.kind", d["kind"])
        if kind not in EntryKind._value2member_map_:
            raise self.fail(f"{field}.kind", f"unknown entry kind {kind}")
        return Entry(
            index=self.int_(f"{field}.index", d["index"], 1),
            term=self.int_(f"{field}.term", d["term"], 1),
            kind=EntryKind(kind),
            data=self.bytes_(f"{field}.data", d["data"]),
        )

    def entries(self, field: str, v: object) -> tuple[Entry, ...]:
        if not isinstance(v, list):
            raise self.fail(field, f"must be a list, got {type(v).__name__}")
        return tuple(self.entry(f"{field}[{i}]", e) for i, e in enumerate(v))

    def snapshot(self, field: str, v: object) -> Snapshot:
        d = self.obj(field, v, {"meta", "data"})
        keys = {"index", "term", "members"}
        if isinstance(d["meta"], dict) and "membership" in d["meta"]:
            keys.add("membership")  # optional: snapshots from before membership changes lack it
        m = self.obj(f"{field}.meta", d["meta"], keys)
        members = m["members"]
        if not isinstance(members, list):
            raise self.fail(f"{field}.meta.members", "must be a list")
        ids = tuple(self.id_(f"{field}.meta.members[{i}]", x) for i, x in enumerate(members))
        membership = None
        if "membership" in m:
            try:
                membership = membership_from_json(m["membership"])
            except MessageDecodeError as err:
                raise self.fail(f"{field}.meta.membership", f"is invalid: {err}") from None
        meta = SnapshotMeta(
            index=self.int_(f"{field}.meta.index", m["index"], 1),
            term=self.int_(f"{field}.meta.term", m["term"], 1),
            members=ids,
            membership=membership,
        )
        return Snapshot(meta=meta, data=self.bytes_(f"{field}.data", d["data"]))


_Validator = Callable[[_Decoder, str, object], object]

_BY_ANNOTATION: dict[str, _Validator] = {
    "NodeId": _Decoder.id_,
    "str": _Decoder.id_,  # a read's request id: 1..256 characters, like a node id
    "Term": _Decoder.int_,
    "Index": _Decoder.int_,
    "int": _Decoder.int_,
    "bool": _Decoder.bool_,
    "tuple[Entry, ...]": _Decoder.entries,
    "Snapshot": _Decoder.snapshot,
}

# Per message type: field name -> validator, derived from the dataclass annotations so the codec
# cannot drift from messages.py (an unknown annotation fails at import, not at runtime).
_SCHEMAS: dict[str, dict[str, _Validator]] = {
    name: {f.name: _BY_ANNOTATION[str(f.type)] for f in dataclasses.fields(cls)}
    for name, cls in MESSAGE_TYPES.items()
}


def _check_semantics(msg: Message, dec: _Decoder) -> None:
    if isinstance(msg, AppendEntries):
        problem = append_problem(msg)
        if problem is not None:
            raise dec.fail(problem.field, problem.why)


def decode_message(obj: object) -> Message:
    """Validate ``obj`` (a decoded JSON value) and build the message; MessageDecodeError if bad."""
    if not isinstance(obj, dict):
        raise MessageDecodeError(f"message must be a JSON object, got {type(obj).__name__}")
    v = obj.get("v")
    if type(v) is not int or v != WIRE_VERSION:
        raise MessageDecodeError(f"unsupported message version {v!r} (expected {WIRE_VERSION})")
    mtype = obj.get("type")
    if not isinstance(mtype, str) or mtype not in _SCHEMAS:
        raise MessageDecodeError(f"unknown message type {mtype!r}")
    schema = _SCHEMAS[mtype]
    dec = _Decoder(mtype)
    given = set(obj) - {"v", "type"}
    if given != set(schema):
        missing = sorted(set(schema) - given)
        extra = sorted(str(k) for k in given - set(schema))
        raise MessageDecodeError(f"{mtype}: missing fields {missing} / unknown fields {extra}")
    kwargs: dict[str, Any] = {name: check(dec, name, obj[name]) for name, check in schema.items()}
    msg: Message = MESSAGE_TYPES[mtype](**kwargs)
    _check_semantics(msg, dec)
    return msg
