"""backup_ops.py — what `raftctl snapshot save|status|restore` and `raftctl recover` do on the
local target (the kind target's half is in kind_ops.py). Prints nothing: progress goes to a
``Reporter``, results are returned for ``render``. docs/operations.md is the runbook.

- ``download_backup``: streams ``GET /v1/admin/snapshot`` from one node (``requests``,
  ``stream=True``: the same TLS trust and token as every raftctl request) into ``FILE.tmp-<pid>``,
  verifies the whole file (raftkv.backup), fsyncs and renames it into place: FILE is either a
  complete verified backup or untouched.
- ``restore_local``: a NEW local cluster (``--name`` must not exist) whose data dirs are seeded by
  ``raftkv restore`` from the file, with a new random cluster id; then started like `raftctl up`.
- ``recover_local``: the survivor's data dir gets ``raftkv recover`` (only voter, every logged entry
  kept); the other replicas' dirs are moved aside (never deleted) and the cluster restarts with the
  survivor alone. ``--replicas N`` then grows it back: the survivor is stopped, an offline backup
  of its whole log (``raftkv backup``) seeds N fresh data dirs (``raftkv restore`` with the SAME
  cluster id), its old dir is moved aside, and N replicas start from identical state.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

from raftctl.backends.base import Backend, Reporter
from raftctl.backends.local.backend import LocalBackend
from raftctl.backends.local.state import ReplicaSpec, Spec, write_json
from raftctl.client import STREAM_ERRORS, NodeUnreachable, Transport, iter_chunks, root_cause
from raftctl.clusterview import fetch_view
from raftctl.errors import ClusterNotRunning, NodeError, RaftctlError, UnknownReplica, UsageError
from raftkv.backup import BackupError, BackupInfo, read_backup
from raftkv.identity import new_cluster_id
from raftkv.storage.identity import read_cluster_id

__all__ = ["check_file", "download_backup", "node_url", "recover_local", "restore_local"]

_CHUNK = 1 << 20


def check_file(path: Path) -> BackupInfo:
    """Verify a backup file; one-line ``RaftctlError`` naming the problem otherwise."""
    try:
        info, _ = read_backup(str(path))
    except BackupError as err:
        raise RaftctlError(f"{path}: {err}") from None
    return info


def node_url(backend: Backend, token: str | None) -> str:
    """The leader's URL if one is known (its backup is linearizable without a relay), else the
    first replica that answers (it relays to the leader)."""
    view = fetch_view(backend.replicas(), token=token)
    row = view.leader_row or next((r for r in view.rows if r.reachable), None)
    if row is None:
        raise NodeError("no replica answers; is the cluster running? (`raftctl status`)")
    return row.replica.url


def download_backup(
    url: str, dest: Path, *, token: str | None, stale: bool = False, timeout: float = 60.0
) -> BackupInfo:
    """Stream a backup from the node at ``url`` into ``dest`` (atomically), verified."""
    path = "/v1/admin/snapshot" + ("?consistency=stale" if stale else "")
    dest = dest.resolve()
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    with Transport(timeout=timeout, token=token) as transport:
        try:
            try:
                with transport.stream(url, path, headers={"Accept": "*/*"}) as resp:
                    if resp.status_code != 200:
                        body = resp.content[:2000].decode("utf-8", "replace")
                        raise NodeError(
                            f"GET /v1/admin/snapshot on {url}: HTTP "
                            f"{resp.status_code}: {_error_text(body)}",
                            status=resp.status_code,
                        )
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        for chunk in iter_chunks(resp, _CHUNK):
                            fh.write(chunk)
                        fh.flush()
                        os.fsync(fh.fileno())
            except NodeUnreachable as err:
                raise NodeError(f"GET /v1/admin/snapshot on {url} failed: {err.why}") from None
            except STREAM_ERRORS as err:
                raise NodeError(
                    f"GET /v1/admin/snapshot on {url} failed: "
                    f"{type(err).__name__}: {root_cause(err)}"
                ) from None
            info = check_file(tmp)
            os.replace(tmp, dest)
            dir_fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return info
        finally:
            if tmp.exists():
                tmp.unlink()


def _error_text(body: str) -> str:
    import json

    try:
        obj = json.loads(body)
    except ValueError:
        return body.strip()[:200] or "no body"
    if isinstance(obj, dict) and "error" in obj:
        return str(obj["error"])
    return body.strip()[:200]


def _raftkv(spec: Spec, *args: str) -> str:
    argv = [*spec.command, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RaftctlError(f"raftkv {args[0]} failed: {tail}")
    return proc.stdout.strip()


def _seed(spec: Spec, backup: Path, cluster_id: str, reporter: Reporter) -> None:
    for r in spec.replicas:
        reporter.step(f"seeding {r.id}'s data dir from {backup.name}")
        _raftkv(
            spec,
            "restore",
            "--data-dir",
            r.data_dir,
            "--id",
            r.id,
            "--snapshot",
            str(backup),
            "--peers",
            spec.peers(),
            "--cluster-id",
            cluster_id,
        )


def restore_local(
    backend: LocalBackend, backup: Path, replicas: int, reporter: Reporter
) -> tuple[BackupInfo, str]:
    """Create the NEW local cluster ``backend.name`` from ``backup``; returns (info, cluster id)."""
    info = check_file(backup)
    if backend.spec() is not None:
        raise UsageError(
            f"local cluster {backend.name} already exists: restore creates a NEW cluster; pick "
            f"another --name, or delete it first with `raftctl down --purge --name {backend.name}`"
        )
    spec = backend._new_spec(replicas)
    cluster_id = new_cluster_id()
    backend.paths.data.mkdir(parents=True, exist_ok=True)
    try:
        _seed(spec, backup.resolve(), cluster_id, reporter)
    except RaftctlError:
        shutil.rmtree(backend.paths.root, ignore_errors=True)
        raise
    write_json(backend.paths.spec, spec.to_json())
    backend.up(None, reporter)
    return info, cluster_id


def _aside(path: Path, why: str) -> Path | None:
    if not path.exists():
        return None
    target = path.with_name(f"{path.name}.{why}-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(target)
    return target


def recover_local(
    backend: LocalBackend, survivor: str, replicas: int, reporter: Reporter
) -> dict[str, object]:
    """Quorum loss: run the cluster from ``survivor`` alone, or (``replicas`` > 1) grow it back
    to ``replicas`` members seeded from the survivor's whole log. Returns what was done."""
    spec = backend.spec()
    if spec is None:
        raise ClusterNotRunning(f"no local cluster named {backend.name}")
    me = spec.replica(survivor)
    if me is None:
        known = ", ".join(r.id for r in spec.replicas)
        raise UnknownReplica(f"unknown replica {survivor!r} (replicas: {known})")
    d0 = Path(me.data_dir)
    if not (d0 / "wal").is_dir() and not (d0 / "snap").is_dir():
        raise RaftctlError(f"{survivor} has no data in {d0}: nothing to recover from")
    reporter.step("stopping the cluster")
    backend.down(False, reporter)
    done: dict[str, object] = {"survivor": survivor}
    moved: list[str] = []
    if replicas == 1:
        reporter.step(f"raftkv recover --data-dir {d0} --id {survivor}")
        done["recover"] = _raftkv(spec, "recover", "--data-dir", str(d0), "--id", survivor)
        for r in spec.replicas:
            if r.id != survivor and (p := _aside(Path(r.data_dir), "lost")) is not None:
                moved.append(str(p))
        new_spec = dataclasses.replace(spec, replicas=(me,), bootstrap=(me.id,))
    else:
        cluster_id = read_cluster_id(str(d0))
        if cluster_id is None:
            raise RaftctlError(f"{d0} records no cluster id; start {survivor} once first")
        snap_file = backend.paths.root / f"grow-{time.strftime('%Y%m%dT%H%M%S')}.snapshot"
        reporter.step(f"offline backup of {survivor}'s whole log")
        done["backup"] = _raftkv(spec, "backup", "--data-dir", str(d0), "--out", str(snap_file))
        members = _grown(backend, spec, me, replicas)
        for r in members:
            if (p := _aside(Path(r.data_dir), "before-grow")) is not None:
                moved.append(str(p))
        for r in spec.replicas:
            if (
                r.id not in {m.id for m in members}
                and (p := _aside(Path(r.data_dir), "lost")) is not None
            ):
                moved.append(str(p))
        # every member is seeded with the same state: they are the new cluster's founders
        new_spec = dataclasses.replace(
            spec, replicas=members, bootstrap=tuple(m.id for m in members)
        )
        _seed(new_spec, snap_file, cluster_id, reporter)
        done["cluster_id"] = cluster_id
        done["seeded_from"] = str(snap_file)
    write_json(backend.paths.spec, new_spec.to_json())
    backend.up(None, reporter)
    done["replicas"] = [r.id for r in new_spec.replicas]
    done["moved_aside"] = moved
    return done


def _grown(backend: LocalBackend, spec: Spec, me: ReplicaSpec, n: int) -> tuple[ReplicaSpec, ...]:
    """``n`` members raft-0..n-1; the survivor keeps its port; others keep theirs if known."""
    if not me.id.startswith("raft-"):
        raise UsageError(f"cannot grow from {me.id}: replica ids are raft-<i>")
    for _ in range(20):  # new members get free ports that no kept member uses
        out = []
        for r in backend._new_spec(n).replicas:
            old = spec.replica(r.id)
            out.append(old if old is not None else r)
        if len({r.port for r in out}) == len(out):
            break
    else:
        raise RaftctlError("could not find free ports for the new members")
    if me.id not in {r.id for r in out}:
        raise UsageError(f"--replicas {n} does not include the survivor {me.id}")
    return tuple(out)
