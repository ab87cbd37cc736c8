"""cli_datadir.py — ``raftkv restore``, ``raftkv recover`` and ``raftkv backup``: offline tools.

They work on a STOPPED node's data directory (datadir.py; docs/operations.md has the runbook).
Output: one summary line (``key=value``) on stdout. Errors: one line on stderr, exit 1 (exit 2
for a bad flag). A damaged backup file is refused with the problem named (backup.py).

    raftkv restore --data-dir D --id raft-1 --snapshot FILE --peers raft-0=URL,... [--cluster-id C]
    raftkv recover --data-dir D --id raft-0
    raftkv backup  --data-dir D --out FILE
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any

from raftkv.backup import BackupError, build_header, iter_backup
from raftkv.config import OPTIONS, load_config
from raftkv.errors import ConfigError
from raftkv.storage.errors import StorageError
from raftkv.storage.fsutil import FILE_MODE, sync_dir, sync_file, write_all

__all__ = ["add_parsers", "run"]

COMMANDS = ("restore", "recover", "backup")
_PEER_FLAGS = ("peers", "replicas", "peer_template", "service", "namespace", "port")


def add_parsers(sub: Any) -> None:
    restore = sub.add_parser(
        "restore",
        help="seed an empty data dir of a NEW cluster from a backup file (offline)",
        description="Seed the empty data directory of one member of a NEW cluster from a backup "
        "(GET /v1/admin/snapshot, raftctl snapshot save). Run it for every member with the "
        "same file and members; the new cluster gets a new cluster id.",
    )
    restore.add_argument("--data-dir", metavar="DIR", help="[env RAFTKV_DATA_DIR]")
    restore.add_argument(
        "--id", metavar="ID", help="this member's id [env RAFTKV_ID, default: the hostname]"
    )
    restore.add_argument("--snapshot", required=True, metavar="FILE", help="the backup file")
    restore.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (exit 0) if the data dir already holds data: for an "
        "init container that runs before every start",
    )
    restore.add_argument(
        "--cluster-id",
        metavar="ID",
        help="the new cluster's id (default: "
        "derived from the backup's checksum and the member list)",
    )
    for name in _PEER_FLAGS:
        flag, env, text = OPTIONS[name]
        restore.add_argument(
            flag, dest=name, default=None, metavar=name.upper(), help=f"{text} [env {env}]"
        )
    recover = sub.add_parser(
        "recover",
        help="make a surviving member the only voter after quorum loss (offline)",
        description="Quorum lost for good: make this stopped node the only voter, keeping every "
        "entry in its log (entries that were never acknowledged may surface). Writes "
        "DATA_DIR/MEMBERS.json, which overrides --peers/--replicas until removed.",
    )
    recover.add_argument("--data-dir", required=True, metavar="DIR")
    recover.add_argument("--id", required=True, metavar="ID", help="the surviving node's id")
    backup = sub.add_parser(
        "backup",
        help="write a backup file from a stopped node's data dir (offline)",
        description="Replay a stopped node's data directory (every logged entry) into a backup "
        "file, the format GET /v1/admin/snapshot serves.",
    )
    backup.add_argument("--data-dir", required=True, metavar="DIR")
    backup.add_argument("--out", required=True, metavar="FILE")


def _fail(message: str, code: int = 1) -> int:
    print(f"raftkv: error: {message}", file=sys.stderr)
    return code


def _restore(args: argparse.Namespace) -> int:
    from raftkv.datadir import restore_data_dir
    from raftkv.identity import derive_cluster_id
    from raftkv.storage.identity import is_valid_cluster_id

    flags: dict[str, str | None] = {name: getattr(args, name) for name in _PEER_FLAGS}
    flags.update(id=args.id, data_dir=args.data_dir)
    try:
        cfg = load_config(flags, os.environ, socket.gethostname())
    except ConfigError as err:
        return _fail(str(err), 2)
    if not (args.data_dir or os.environ.get("RAFTKV_DATA_DIR")):
        return _fail("--data-dir/RAFTKV_DATA_DIR: required", 2)
    from raftkv.identity import has_state

    if args.if_empty and os.path.isdir(cfg.data_dir) and has_state(cfg.data_dir):
        print(f"skipped data_dir={cfg.data_dir}: it already holds data (--if-empty)")
        return 0
    if args.cluster_id is not None and not is_valid_cluster_id(args.cluster_id):
        return _fail(f"--cluster-id: invalid cluster id {args.cluster_id!r}", 2)
    from raftkv.backup import read_backup

    try:
        info, _ = read_backup(args.snapshot)
        cluster_id = args.cluster_id or derive_cluster_id(cfg.peers, salt=info.checksum)
        restore_data_dir(cfg.data_dir, cfg.id, cfg.peer_ids, args.snapshot, cluster_id)
    except BackupError as err:
        return _fail(f"{args.snapshot}: {err}")
    except (StorageError, OSError, ValueError) as err:
        return _fail(str(err))
    print(
        f"restored data_dir={cfg.data_dir} id={cfg.id} index={info.index} term={info.term} "
        f"keys={info.keys} members={','.join(cfg.peer_ids)} cluster_id={cluster_id}"
    )
    return 0


def _recover(args: argparse.Namespace) -> int:
    from raftkv.datadir import recover_data_dir

    try:
        st = recover_data_dir(args.data_dir, args.id)
    except (StorageError, OSError, ValueError) as err:
        return _fail(str(err))
    beyond = max(0, st.index - max(st.commit_hint, st.snapshot_index))
    print(
        f"recovered data_dir={args.data_dir} voters={args.id} index={st.index} "
        f"term={st.term} keys={st.keys} entries_beyond_stored_commit={beyond}"
    )
    return 0


def write_file_durably(path: str, chunks: Any) -> int:
    """Write ``chunks`` to ``path`` atomically (tmp, fsync, rename, fsync dir); return bytes."""
    path = os.path.abspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    size = 0
    try:
        for chunk in chunks:
            size += write_all(fd, [chunk])
        sync_file(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    sync_dir(os.path.dirname(path))
    return size


def _backup(args: argparse.Namespace) -> int:
    from raftkv.datadir import materialize
    from raftkv.storage.identity import read_cluster_id

    try:
        st = materialize(args.data_dir)
        header = build_header(
            index=st.index,
            term=st.term,
            keys=st.keys,
            data_bytes=len(st.data),
            cluster_id=read_cluster_id(args.data_dir) or "",
            node="offline:" + args.data_dir,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        size = write_file_durably(args.out, iter_backup(header, st.data))
    except (StorageError, OSError, ValueError) as err:
        return _fail(str(err))
    print(f"backup file={args.out} index={st.index} term={st.term} keys={st.keys} bytes={size}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "restore":
        return _restore(args)
    if args.command == "recover":
        return _recover(args)
    return _backup(args)
