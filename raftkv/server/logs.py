"""logs.py — one log line per event, key=value, each stamped with the node's id, term and role.

``setup_logging(node_id, level, status)`` installs a stderr handler on the ``raftkv`` logger whose
filter adds ``node=<id> term=<t> role=<r>`` (read from ``status()`` at emit time) to every record:

    2026-11-24T07:01:02.345Z INFO node=raft-0 term=3 role=leader raftkv.server.driver event=...

Values are never logged (keys only where useful).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["setup_logging"]

_HANDLER_NAME = "raftkv-stderr"


class _NodeFilter(logging.Filter):
    def __init__(self, node_id: str, status: Callable[[], Any] | None) -> None:
        super().__init__()
        self.node_id = node_id
        self.status = status

    def filter(self, record: logging.LogRecord) -> bool:
        term: Any = "-"
        role: Any = "-"
        if self.status is not None:
            try:
                st = self.status()
                term, role = st.term, st.role
            except Exception:  # logging must never fail the caller
                pass
        record.raft_node = self.node_id
        record.raft_term = term
        record.raft_role = role
        return True


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{t}.{int(record.msecs):03d}Z"


def setup_logging(
    node_id: str, level: str = "info", status: Callable[[], Any] | None = None
) -> None:
    """Configure the ``raftkv`` logger (idempotent: replaces its own handler)."""
    logger = logging.getLogger("raftkv")
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_NodeFilter(node_id, status))
    handler.setFormatter(
        _UTCFormatter(
            "%(asctime)s %(levelname)s node=%(raft_node)s term=%(raft_term)s "
            "role=%(raft_role)s %(name)s %(message)s"
        )
    )
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
