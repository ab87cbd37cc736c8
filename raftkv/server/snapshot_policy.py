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
"""

from __future__ import annotations

__all__ = ["LOG_RATIO", "MAX_LOG_BYTES", "should_snapshot"]

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
