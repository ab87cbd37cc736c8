"""Hypothesis strategies shared by the fuzz tests: valid Raft messages (every type, built from
the dataclass fields so a new message type is covered automatically), JSON values, and mutations
of a JSON document at any depth."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hypothesis import strategies as st

from raftkv.raft import Entry, EntryKind, Message, Snapshot, SnapshotMeta
from raftkv.raft.messages import MESSAGE_TYPES, AppendEntries

ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
small = st.integers(0, 50)
big = st.integers(0, 2**63 - 1)
ints = small | big

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    meta = SnapshotMeta(
        index=draw(st.integers(1, 2**63 - 1)),
        term=draw(st.integers(1, 2**63 - 1)),
        members=tuple(draw(st.lists(ids, max_size=5))),
    )
    return Snapshot(meta=meta, data=draw(st.binary(max_size=64)))


@st.composite
def messages(draw: st.DrawFn) -> Message:
    name = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    cls = MESSAGE_TYPES[name]
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        t = str(f.type)
        if t in ("NodeId", "str"):
            kw[f.name] = draw(ids)
        elif t == "bool":
            kw[f.name] = draw(st.booleans())
        elif t == "Snapshot":
            kw[f.name] = draw(snapshots())
        elif t == "tuple[Entry, ...]":
            kw[f.name] = ()
        else:
            kw[f.name] = draw(ints)
    if cls is AppendEntries:  # keep the semantic rules: contiguous entries, sane terms
        term = draw(st.integers(1, 2**40))
        prev_index = draw(st.integers(0, 2**40))
        prev_term = 0 if prev_index == 0 else draw(st.integers(0, term))
        n = draw(st.integers(0, 4))
        terms = sorted(draw(st.lists(st.integers(max(prev_term, 1), term), min_size=n, max_size=n)))
        entries = tuple(
            Entry(
                index=prev_index + 1 + i,
                term=t,
                # CONFIG entries must hold a configuration the codec checks (arbitrary bytes are
                # refused by design): tests/unit/raft/test_membership.py tests their wire form
                kind=draw(st.sampled_from([k for k in EntryKind if k is not EntryKind.CONFIG])),
                data=draw(st.binary(max_size=16)),
            )
            for i, t in enumerate(terms)
        )
        kw.update(term=term, prev_index=prev_index, prev_term=prev_term, entries=entries)
    msg: Message = cls(**kw)
    return msg


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one node anywhere in it replaced, deleted, or given an extra key."""
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(json_values)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "extra"]))
    if action == "delete":
        del parent[last]
    elif action == "extra" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(json_values)
    else:
        parent[last] = draw(json_values)
    return doc
