"""progress.py: per-follower probe / replicate / snapshot states."""

from __future__ import annotations

from raftkv.raft.progress import Progress, ProgressState


def test_probe_pauses_after_one_message() -> None:
    pr = Progress(5)
    assert pr.state is ProgressState.PROBE and not pr.is_paused(4)
    pr.probe_sent = True
    assert pr.is_paused(4)
    assert pr.maybe_update(4)
    assert not pr.is_paused(4) and pr.next == 5


def test_replicate_bounds_inflight_and_frees_on_ack() -> None:
    pr = Progress(1)
    pr.become_replicate()
    for last in (3, 6):
        pr.inflight.append(last)
    assert pr.is_paused(2)
    pr.maybe_update(3)
    assert list(pr.inflight) == [6] and not pr.is_paused(2)


def test_stale_rejects_are_ignored_and_real_ones_probe() -> None:
    pr = Progress(1)
    pr.maybe_update(5)
    pr.become_replicate()
    pr.next = 10
    assert not pr.maybe_decrease_to(4, 2)  # below match: stale
    assert pr.maybe_decrease_to(9, 7)
    assert (pr.state, pr.next) == (ProgressState.PROBE, 7)
    assert not pr.maybe_decrease_to(9, 7)  # probe expects prev == next-1 == 6
    assert pr.maybe_decrease_to(6, 1)
    assert pr.next == 6 and pr.match == 5  # never below match + 1 on one rejection


def test_lost_entries_take_a_rejection_then_a_rejected_fresh_probe_at_match() -> None:
    # replicating: the append right after match (prev == match) is refused: suspect, probe at
    # match again (one rejection alone may be old: reordered with the ack that moved match)
    pr = Progress(1)
    pr.maybe_update(5)
    pr.become_replicate()
    pr.inflight.append(8)
    pr.next = 9
    assert not pr.maybe_decrease_to(4, 1)  # older than match: stale
    assert pr.match == 5 and pr.state is ProgressState.REPLICATE
    assert pr.maybe_decrease_to(5, 3)
    assert (pr.state, pr.match, pr.next, pr.suspect_lost) == (ProgressState.PROBE, 5, 6, True)
    # the fresh probe at match is rejected too, with a hint at or below match: lost, reset
    assert pr.maybe_decrease_to(5, 3)
    assert (pr.state, pr.match, pr.next, pr.suspect_lost) == (ProgressState.PROBE, 0, 3, False)


def test_an_acknowledgement_refutes_the_suspicion() -> None:
    pr = Progress(1)
    pr.maybe_update(5)
    pr.become_replicate()
    pr.next = 9
    assert pr.maybe_decrease_to(5, 5)  # an old rejection, reordered with the ack of 5
    assert pr.suspect_lost
    pr.maybe_update(5)  # the fresh probe at 5 is acknowledged: the follower holds it
    assert not pr.suspect_lost and pr.match == 5
    pr.become_replicate()
    pr.next = 6
    assert pr.maybe_decrease_to(5, 5)
    assert pr.match == 5 and pr.next == 6 and pr.suspect_lost  # suspect again, not reset


def test_probing_from_a_snapshot_then_lost() -> None:
    # probing above match (after a snapshot): a hint at or below match makes it suspect and
    # probe at match; rejected there too: reset
    pr = Progress(1)
    pr.maybe_update(5)
    pr.next = 7
    assert pr.maybe_decrease_to(6, 1)
    assert (pr.match, pr.next, pr.suspect_lost) == (5, 6, True)
    assert not pr.maybe_decrease_to(6, 1)  # not the current probe any more
    assert pr.maybe_decrease_to(5, 1)
    assert (pr.match, pr.next) == (0, 1)


def test_snapshot_state_is_paused_until_acknowledged() -> None:
    pr = Progress(3)
    pr.become_snapshot(20)
    assert pr.is_paused(100)
    pr.become_probe()
    assert pr.state is ProgressState.PROBE and pr.next == 21
