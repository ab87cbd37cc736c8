"""identity.py — the two small records a data directory keeps beside its log (docs/operations.md).

    DATA_DIR/CLUSTER_ID     the cluster this directory belongs to: one line, 1-64 chars of
                            letters, digits, '.', '_', '-'. Written once, when the node first
                            starts on a fresh directory (or by ``raftkv restore``/``recover``).
    DATA_DIR/MEMBERS.json   a forced voter set, written by ``raftkv recover`` (like etcd's
                            --force-new-cluster or Consul's peers.json): {"voters": [...],
                            "index": N, "reason": "recover"}. While present it overrides the
                            --peers/--replicas flags. It is the configuration log-based
                            membership starts from (the first configuration entry supersedes it).

Both are replaced atomically and durably (tmp, fsync, rename, fsync the directory). A record
that exists but does not parse raises ``StorageCorrupt`` naming the file: never guessed around.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from raftkv.storage.errors import StorageCorrupt, StorageError
from raftkv.storage.fsutil import FILE_MODE, sync_dir, sync_file, write_all

__all__ = [
    "CLUSTER_ID_NAME",
    "MEMBERS_NAME",
    "ForcedMembership",
    "clear_membership",
    "is_valid_cluster_id",
    "read_cluster_id",
    "read_membership",
    "write_cluster_id",
    "write_membership",
]

CLUSTER_ID_NAME = "CLUSTER_ID"
MEMBERS_NAME = "MEMBERS.json"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def is_valid_cluster_id(text: str) -> bool:
    return bool(_ID_RE.match(text))


def _atomic_write(data_dir: str, name: str, blob: bytes) -> None:
    path = os.path.join(data_dir, name)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        write_all(fd, [blob])
        sync_file(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    sync_dir(data_dir)


def _read(data_dir: str, name: str) -> bytes | None:
    path = os.path.join(data_dir, name)
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 16)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"cannot read {path}: {err.strerror or err}") from err


def read_cluster_id(data_dir: str) -> str | None:
    """The recorded cluster id, None if the directory has none yet."""
    raw = _read(data_dir, CLUSTER_ID_NAME)
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace").strip()
    if not is_valid_cluster_id(text):
        raise StorageCorrupt(
            os.path.join(data_dir, CLUSTER_ID_NAME), 0, f"not a valid cluster id: {text[:80]!r}"
        )
    return text


def write_cluster_id(data_dir: str, cluster_id: str) -> None:
    if not is_valid_cluster_id(cluster_id):
        raise ValueError(f"invalid cluster id {cluster_id!r}")
    _atomic_write(data_dir, CLUSTER_ID_NAME, (cluster_id + "\n").encode())


@dataclass(frozen=True, slots=True)
class ForcedMembership:
    """A forced voter set (``raftkv recover``)."""

    voters: tuple[str, ...]
    index: int  # the log index it was forced at
    reason: str = "recover"

    def to_json(self) -> dict[str, object]:
        return {"voters": list(self.voters), "index": self.index, "reason": self.reason}


def read_membership(data_dir: str) -> ForcedMembership | None:
    raw = _read(data_dir, MEMBERS_NAME)
    if raw is None:
        return None
    path = os.path.join(data_dir, MEMBERS_NAME)
    try:
        obj = json.loads(raw)
        voters = obj["voters"]
        index = obj["index"]
        if (
            not isinstance(voters, list)
            or not voters
            or not all(isinstance(v, str) and v for v in voters)
            or not isinstance(index, int)
            or index < 0
        ):
            raise ValueError("voters must be a non-empty list of ids and index an integer >= 0")
        return ForcedMembership(tuple(voters), index, str(obj.get("reason", "recover")))
    except (ValueError, KeyError, TypeError) as err:
        raise StorageCorrupt(path, 0, f"bad membership record: {err}") from None


def write_membership(data_dir: str, membership: ForcedMembership) -> None:
    blob = json.dumps(membership.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    _atomic_write(data_dir, MEMBERS_NAME, blob)


def clear_membership(data_dir: str) -> bool:
    """Remove the forced voter set; True if there was one."""
    try:
        os.unlink(os.path.join(data_dir, MEMBERS_NAME))
    except FileNotFoundError:
        return False
    sync_dir(data_dir)
    return True
