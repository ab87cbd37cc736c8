"""Stale, duplicated, misaddressed or nonsensical messages never crash a node (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st
from raftnet import Network

from raftkv.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)

ids = st.sampled_from(["n1", "n2", "n3", "zz"])
small = st.integers(min_value=0, max_value=8)


@st.composite
def entries(draw: st.DrawFn, prev: int) -> tuple[Entry, ...]:
    n = draw(st.integers(min_value=0, max_value=3))
    terms = draw(st.lists(st.integers(min_value=1, max_value=8), min_size=n, max_size=n))
    contiguous = draw(st.booleans())
    return tuple(
        Entry(index=prev + 1 + i if contiguous else draw(small) + 1, term=t)
        for i, t in enumerate(terms)
    )


@st.composite
def messages(draw: st.DrawFn) -> Message:
    src, dst, term = draw(ids), draw(ids), draw(small)
    kind = draw(st.integers(min_value=0, max_value=7))
    if kind == 0:
        return RequestVote(
            src=src,
            dst=dst,
            term=term,
            last_log_index=draw(small),
            last_log_term=draw(small),
            pre_vote=draw(st.booleans()),
            transfer=draw(st.booleans()),
        )
    if kind == 1:
        return RequestVoteResponse(
            src=src, dst=dst, term=term, granted=draw(st.booleans()), pre_vote=draw(st.booleans())
        )
    if kind == 2:
        prev = draw(small)
        return AppendEntries(
            src=src,
            dst=dst,
            term=term,
            prev_index=prev,
            prev_term=draw(small),
            entries=draw(entries(prev)),
            commit=draw(small),
        )
    if kind == 3:
        return AppendEntriesResponse(
            src=src,
            dst=dst,
            term=term,
            index=draw(small),
            reject=draw(st.booleans()),
            hint_index=draw(small),
            hint_term=draw(small),
        )
    if kind == 4:
        meta = SnapshotMeta(index=draw(small) + 1, term=draw(small) + 1, members=("n1", "n2", "n3"))
        return InstallSnapshot(src=src, dst=dst, term=term, snapshot=Snapshot(meta=meta, data=b"s"))
    if kind == 5:
        return Heartbeat(src=src, dst=dst, term=term, commit=draw(small), context=draw(small))
    if kind == 6:
        return HeartbeatResponse(src=src, dst=dst, term=term, context=draw(small))
    return TimeoutNow(src=src, dst=dst, term=term)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(messages(), max_size=12), st.integers(min_value=0, max_value=3))
def test_random_messages_never_crash_a_node(msgs: list[Message], setup: int) -> None:
    net = Network(3)
    if setup >= 1:
        net.elect("n1")
    if setup >= 2:
        net.node("n1").propose(b"x")
        net.stabilize()
    if setup == 3:
        net.node("n1").read_index("r")
    for m in msgs:
        for nid in net.ids:
            if m.dst == nid:
                net.node(nid).step(m)
        net.process_all()  # Ready/advance stay consistent
        net.queue.clear()
    for nid in net.ids:
        net.node(nid).tick()
        net.node(nid).status()


@settings(max_examples=300, deadline=None, derandomize=True)
@given(messages())
def test_generated_messages_round_trip_or_are_rejected_for_a_reason(m: Message) -> None:
    from raftkv.raft import MessageDecodeError, decode_message, encode_message
    from raftkv.raft.wellformed import append_problem

    wire = json.loads(json.dumps(encode_message(m)))
    if isinstance(m, AppendEntries) and append_problem(m) is not None:
        with pytest.raises(MessageDecodeError):
            decode_message(wire)
    else:
        assert decode_message(wire) == m


@pytest.mark.parametrize(("index", "hint_index", "hint_term"), [(3, 3, 0), (1, 9, 0), (1, 9, 7)])
def test_forged_reject_beyond_the_leaders_log_is_ignored(
    index: int, hint_index: int, hint_term: int
) -> None:
    # regression (core-bugs.md #1): a reject naming a prev index past the leader's log used to
    # move next beyond the log end and trip an invariant
    net = Network(3)
    net.elect("n1")
    n1 = net.node("n1")
    n1.step(
        AppendEntriesResponse(
            src="n2",
            dst="n1",
            term=n1.term,
            index=index,
            reject=True,
            hint_index=hint_index,
            hint_term=hint_term,
        )
    )
    net.stabilize()
    n1.propose(b"still fine")
    net.tick_all(2)
    assert net.node("n2").last_log_index == n1.last_log_index == 2
