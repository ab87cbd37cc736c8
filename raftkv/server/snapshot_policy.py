"""snapshot_policy.py — when to take a snapshot: ONE place decides (docs/storage.md).

A snapshot costs about its size in bytes written (the whole state); the log it replaces costs
its bytes to keep (memory: the core holds the entries since the last snapshot) and to replay at
restart. A fixed entry count makes the cost per entry grow with the data: at a million keys a
~120 MB snapshot every 10,000 entries (~2 MB of log) writes 60x the log. So:

- never before ``snapshot_every`` entries (the flag: a floor, as before, what small setups see);
- then once the log since the last snapshot holds ``LOG_RATIO`` x the last snapshot's size:
  snapshot bytes written per log byte stay <= 1 / LOG_RATIO whatever the data size;
- but always once the log reaches ``MAX_LOG_BYTES`` (the ceiling: bounds the memory the log
  holds — each entry costs ~1.7x its command bytes in RSS, so 16 MiB of commands is ~27 MiB —
  and the replay at restart when the data is huge; at a million keys a ~130 MB snapshot is then
  written per 16 MiB of log: 8x, in the background).

``SnapshotSchedule`` keeps the figures that rule needs (the driver's counters, updated when a
snapshot is restored, taken or installed, and as entries are applied).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOG_RATIO", "MAX_LOG_BYTES", "SnapshotSchedule", "should_snapshot"]

LOG_RATIO = 0.5
MAX_LOG_BYTES = 16 << 20


def should_snapshot(
    entries_since: int, log_bytes_since: int, last_snapshot_bytes: int, snapshot_every: int
) -> bool:
    """Whether to take a snapshot now (see the module docstring)."""
    if entries_since < snapshot_every:
        return False
    if log_bytes_since >= MAX_LOG_BYTES:
        return True
    return log_bytes_since >= LOG_RATIO * last_snapshot_bytes


@dataclass(slots=True)
class SnapshotSchedule:
    """What the last snapshot was and what was applied since (driver thread only)."""

    index: int = 0  # the last snapshot's index (taken here or installed from the leader)
    applied_at: int = 0  # the applied index it covers (the log since then is what it replaces)
    log_bytes: int = 0  # bytes of entries applied since (the log's cost to keep and replay)
    last_bytes: int = 0  # the last snapshot's data size
    _log_bytes_at_start: int = 0  # log_bytes when the snapshot being written was copied

    def due(self, applied_index: int, snapshot_every: int) -> bool:
        return should_snapshot(
            applied_index - self.applied_at, self.log_bytes, self.last_bytes, snapshot_every
        )

    def restored(self, index: int) -> None:
        """The state machine now holds snapshot ``index`` (at start, or installed from the
        leader); ``last_bytes`` is set by whoever read its data."""
        self.index = self.applied_at = index
        self.log_bytes = 0

    def nothing_new(self, applied_index: int) -> None:
        """Nothing was applied since the last snapshot: no new one; start counting again."""
        self.applied_at = applied_index
        self.log_bytes = 0

    def copied(self) -> None:
        """The state was copied for a new snapshot; entries applied from now on are not in it."""
        self._log_bytes_at_start = self.log_bytes

    def written(self, index: int, size: int | None) -> None:
        """The snapshot copied at ``index`` is on disk (``size`` None: not adopted, a newer one
        was there already)."""
        if size is not None:
            self.index = index
            self.last_bytes = size
        self.applied_at = max(self.applied_at, index)
        self.log_bytes = max(0, self.log_bytes - self._log_bytes_at_start)
