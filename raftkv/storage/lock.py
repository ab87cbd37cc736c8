"""lock.py — the data directory's ``LOCK`` file: one process at a time, with a bounded wait.

``flock(LOCK_EX)`` on ``DATA_DIR/LOCK``; the kernel drops it when the holder exits, however it
exits. Waiting matters on Kubernetes: when a pod is replaced (force-deleted, or its container
restarted in place) the new node can start on the same volume while the old process is still in
its grace period, holding the lock. Exiting at once then costs a container restart and a growing
crash-loop back-off; waiting up to the grace period (``--lock-timeout``/``RAFTKV_LOCK_TIMEOUT``)
lets the old process finish and the new one start as soon as the lock is free.
"""

from __future__ import annotations

import fcntl
import logging
import time

from raftkv.storage.errors import StorageLocked

__all__ = ["POLL_S", "acquire"]

log = logging.getLogger(__name__)
POLL_S = 0.1


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def acquire(fd: int, data_dir: str, timeout: float) -> None:
    """Lock ``fd`` (the open ``LOCK`` file of ``data_dir``), waiting up to ``timeout`` seconds
    (0: do not wait). Raises ``StorageLocked`` when another process still holds it then."""
    if _try(fd):
        return
    if timeout <= 0:
        raise StorageLocked(f"{data_dir} is in use by another process")
    began = time.monotonic()
    log.warning(
        "storage waiting for the lock dir=%s timeout_s=%g (another process holds it: "
        "a previous node on this volume still shutting down?)",
        data_dir,
        timeout,
    )
    while True:
        time.sleep(POLL_S)
        if _try(fd):
            waited = time.monotonic() - began
            log.info("storage lock acquired dir=%s waited_s=%.2f", data_dir, waited)
            return
        waited = time.monotonic() - began
        if waited >= timeout:
            raise StorageLocked(
                f"{data_dir} is in use by another process (waited {waited:.1f} s for its lock; "
                "raise --lock-timeout/RAFTKV_LOCK_TIMEOUT, or stop the other process)"
            )
