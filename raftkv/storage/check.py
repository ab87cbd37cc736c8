"""check.py — ``raftkv check-data DIR``: verify a data directory offline and print what it holds.

``run_check_data(path) -> int`` never modifies the directory (a torn tail is reported, not cut;
it is cut at the node's next start). It prints the snapshot(s), the log range, the hard state
and every segment, then a final ``status:`` line. Exit codes: 0 the data is intact (possibly
with a torn tail, which recovery repairs), 1 corruption (the file and byte offset are named),
2 the path is not a raftkv data directory.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from raftkv.storage.errors import StorageCorrupt
from raftkv.storage.identity import read_cluster_id, read_membership
from raftkv.storage.recovery import SNAP_DIR, WAL_DIR, scan_data_dir
from raftkv.storage.snapshot import read_snapshot

__all__ = ["run_check_data"]


def run_check_data(path: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Verify ``path``; print the report to ``out`` (stdout), usage errors to ``err`` (stderr).

    Returns the exit code.
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def say(line: str) -> None:
        print(line, file=out)

    if not os.path.isdir(path):
        print(f"raftkv: error: {path}: not a directory", file=err)
        return 2
    if not (
        os.path.isdir(os.path.join(path, WAL_DIR)) or os.path.isdir(os.path.join(path, SNAP_DIR))
    ):
        print(
            f"raftkv: error: {path}: not a raftkv data directory (no {WAL_DIR}/ or {SNAP_DIR}/)",
            file=err,
        )
        return 2
    say(f"data-dir: {os.path.abspath(path)}")
    try:
        cluster_id = read_cluster_id(path)
        members = read_membership(path)
        say(f"cluster-id: {cluster_id or 'none (recorded at the next start)'}")
        if members is not None:
            say(
                f"forced-voters: {','.join(members.voters)} index={members.index} "
                f"reason={members.reason} (MEMBERS.json overrides --peers/--replicas)"
            )
        scan = scan_data_dir(path)
        if scan.fresh:
            say("empty: no snapshot and no log yet")
            say("status: OK")
            return 0
        # Open verifies only the newest snapshot; check every retained one.
        for info in scan.snapshots[:-1]:
            read_snapshot(info.path)
    except StorageCorrupt as bad:
        say(f"CORRUPT: file={bad.path} offset={bad.offset}: {bad.why}")
        say("status: CORRUPT")
        return 1
    except OSError as oops:
        # e.g. a running node pruned a file between listing and reading it
        print(f"raftkv: error: cannot read {path}: {oops}", file=err)
        return 1

    if scan.snapshot is not None:
        meta = scan.snapshot.meta
        say(
            f"snapshot: index={meta.index} term={meta.term} members={','.join(meta.members)} "
            f"data_bytes={len(scan.snapshot.data)} file={scan.snapshot_path}"
        )
    else:
        say("snapshot: none")
    say(f"snapshots: {len(scan.snapshots)} (checksums ok)")
    hs = scan.hard_state
    say(f"hard-state: term={hs.term} voted_for={hs.voted_for or '-'} commit={hs.commit}")
    first = scan.snap_index + 1
    last = scan.entries[-1].index if scan.entries else scan.snap_index
    say(f"log: first_index={first} last_index={last} entries={len(scan.entries)}")
    say(f"segments: {len(scan.segments)}")
    for seg in scan.segments:
        rng = f"{seg.min_index}..{seg.max_index}" if seg.entries else "-"
        say(
            f"  {os.path.basename(seg.path)} bytes={seg.size} records={seg.records} "
            f"entries_written={seg.entries} index_range={rng}"
        )
    if scan.torn is not None:
        say(
            f"WARNING: torn tail: file={scan.torn_path} offset={scan.torn.offset} "
            f"bytes={scan.torn.size - scan.torn.offset} ({scan.torn.why}); "
            "it is truncated when the node next starts"
        )
    if scan.needs_marker:
        say("note: the newest snapshot's log mark is missing (interrupted save); added at start")
    for tmp in scan.tmp_files:
        say(f"note: leftover temporary file {tmp} (removed at start)")
    say("status: OK")
    return 0
