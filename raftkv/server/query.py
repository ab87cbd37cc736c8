"""query.py — query-string checks shared by the routes: unknown parameters and ``consistency``."""

from __future__ import annotations

from flask import Request

from raftkv.errors import InvalidQuery

__all__ = ["check_query", "linearizable"]


def check_query(req: Request, allowed: frozenset[str]) -> None:
    """400 ``invalid_query`` for a parameter not in ``allowed`` (the message lists them)."""
    for name in req.args:
        if name not in allowed:
            hint = ", ".join(sorted(allowed)) or "none"
            raise InvalidQuery(f"unknown query parameter {name!r} (allowed: {hint})")


def linearizable(req: Request) -> bool:
    """True for ``consistency=linearizable`` (the default), False for ``consistency=stale``."""
    value = req.args.get("consistency", "linearizable")
    if value not in ("linearizable", "stale"):
        raise InvalidQuery(f"consistency must be 'linearizable' or 'stale', got {value!r}")
    return value == "linearizable"
