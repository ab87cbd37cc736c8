"""datadir.py — offline operations on a stopped node's data directory: restore and recover.

``raftkv restore`` and ``raftkv recover`` (cli.py) call these; raftctl runs those commands
(docs/operations.md has the runbook). Both hold the directory's lock (``Storage.open``), so they
refuse to touch a directory a running node has open.

- ``restore_data_dir`` seeds an EMPTY directory from a backup file (backup.py): a storage
  snapshot at the backup's (index, term) naming the new members, a hard state with that term
  and commit, and the new cluster's id. Every member of the new cluster is seeded from the same
  file, so all start with identical logs and elect a leader in the next term.
- ``materialize`` replays a directory offline: its newest snapshot plus EVERY entry of its log
  (committed or not — nothing in the directory says which of the last entries committed; the
  stored commit index is only a hint) into a KV state machine.
- ``recover_data_dir`` (quorum loss, like etcd ``--force-new-cluster``): materializes the
  survivor's log into a snapshot at its last index, raises the term to at least that entry's,
  and writes ``MEMBERS.json`` naming the survivor as the only voter. Writes the survivor had but
  that were never acknowledged to a client may therefore surface (as with etcd).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from raftkv.backup import BackupInfo, read_backup
from raftkv.identity import has_state
from raftkv.kv import KVStateMachine
from raftkv.raft.membership import decode_change
from raftkv.raft.types import EntryKind, HardState, Membership, Snapshot, SnapshotMeta
from raftkv.storage import Storage
from raftkv.storage.identity import ForcedMembership, write_cluster_id, write_membership
from raftkv.storage.recovery import SNAP_DIR
from raftkv.storage.snapshot import write_snapshot

__all__ = ["DataDirError", "Materialized", "materialize", "recover_data_dir", "restore_data_dir"]


class DataDirError(ValueError):
    """An offline operation cannot be done; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Materialized:
    index: int
    term: int
    keys: int
    data: bytes
    snapshot_index: int  # where the directory's own snapshot was
    commit_hint: int  # the stored commit index (may lag the true one)
    hard_term: int
    membership: Membership | None  # the last configuration in snapshot + log (None: flags)


def restore_data_dir(
    data_dir: str, node_id: str, members: tuple[str, ...], backup_path: str, cluster_id: str
) -> BackupInfo:
    """Seed the empty ``data_dir`` of member ``node_id`` from the backup at ``backup_path``."""
    if node_id not in members:
        raise DataDirError(f"--id {node_id} is not among the members ({','.join(members)})")
    info, data = read_backup(backup_path)  # BackupError (a ValueError) names the damage
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        raise DataDirError(
            f"{data_dir} is not empty: restore creates a new cluster's data and needs an empty "
            "(or missing) directory"
        )
    with Storage.open(data_dir) as storage:
        if info.index > 0:
            meta = SnapshotMeta(index=info.index, term=info.term, members=members)
            storage.save_snapshot(Snapshot(meta=meta, data=data))
            storage.save(HardState(term=info.term, voted_for=None, commit=info.index), [])
    write_cluster_id(data_dir, cluster_id)
    return info


def _open(data_dir: str) -> Storage:
    if not os.path.isdir(data_dir):
        raise DataDirError(f"{data_dir}: no such data directory")
    if not has_state(data_dir):
        raise DataDirError(f"{data_dir} holds no data (no log, no snapshot)")
    return Storage.open(data_dir)


def _replay(storage: Storage) -> Materialized:
    rec = storage.recovered
    sm = KVStateMachine()
    snap_index = 0
    conf: Membership | None = None
    if rec.snapshot is not None:
        sm.restore(rec.snapshot.data)
        sm.reset_applied(rec.snapshot.meta.index, rec.snapshot.meta.term)
        snap_index = rec.snapshot.meta.index
        conf = rec.snapshot.meta.membership
    with sm.lock:
        for e in rec.entries:
            if e.index <= sm.applied_index:
                continue
            if e.kind is EntryKind.NORMAL:
                sm.apply(e.index, e.term, e.data)
            else:  # NOOP, CONFIG: no KV effect
                if e.kind is EntryKind.CONFIG:
                    conf = decode_change(e.data, e.index)[1]
                sm.apply_noop(e.index, e.term)
    return Materialized(
        index=sm.applied_index, term=sm.applied_term, keys=len(sm), data=sm.snapshot(),
        snapshot_index=snap_index, commit_hint=rec.hard_state.commit,
        hard_term=rec.hard_state.term, membership=conf,
    )  # fmt: skip


def materialize(data_dir: str) -> Materialized:
    """The state of a stopped node's directory with every logged entry applied."""
    with _open(data_dir) as storage:
        return _replay(storage)


def recover_data_dir(data_dir: str, node_id: str) -> Materialized:
    """Make ``node_id`` the only voter of its cluster, keeping every entry it has."""
    with _open(data_dir) as storage:
        state = _replay(storage)
        if state.index == 0:
            raise DataDirError(f"{data_dir} holds no data (no applied entry)")
        old = state.membership
        if old is not None and node_id not in old.members:
            raise DataDirError(
                f"{node_id} is not a member of the configuration in {data_dir} "
                f"(voters {','.join(old.voters) or '-'})"
            )
        # The forced configuration: this node the only voter; no learners; the lost members
        # join the ids removed before (a disk of theirs that resurfaces is ignored, and new
        # members take new ids). index 0 = "not yet in the log": the first leader writes it as
        # its bootstrap CONFIG entry; from then on the log defines membership (membership.py).
        removed = set(old.removed) | (set(old.members) - {node_id}) if old else set()
        forced = Membership(
            voters=(node_id,),
            urls=tuple((n, u) for n, u in (old.urls if old else ()) if n == node_id),
            removed=tuple(sorted(removed)),
            index=0,
        )
        meta = SnapshotMeta(
            index=state.index, term=state.term, members=(node_id,), membership=forced
        )
        snap = Snapshot(meta=meta, data=state.data)
        if state.index > state.snapshot_index:
            storage.save_snapshot(snap)
        else:  # nothing after the stored snapshot: replace it (same index and term) in place
            write_snapshot(os.path.join(data_dir, SNAP_DIR), snap)
        hs = storage.hard_state
        voted = hs.voted_for if hs.term >= state.term else None
        storage.save(
            HardState(term=max(hs.term, state.term), voted_for=voted, commit=state.index), []
        )
    # Kept: CLUSTER_ID (the recovered cluster is the same cluster). A directory written before
    # cluster ids existed gets the id derived from the flags at the node's next start.
    write_membership(data_dir, ForcedMembership((node_id,), state.index, "recover"))
    return state
