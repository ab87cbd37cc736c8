"""requestid.py — the ``X-Request-Id: <client-id>:<seq>`` parser (exactly-once writes).

Kept apart from app.py (which re-exports it) so fuzzers can load it without Flask.
"""

from __future__ import annotations

from raftkv.errors import InvalidRequestId

__all__ = ["parse_request_id"]


def parse_request_id(raw: str | None) -> tuple[str | None, int | None]:
    """``X-Request-Id: <client-id>:<seq>`` -> (client_id, seq); absent -> (None, None)."""
    if raw is None:
        return None, None
    client, sep, seq_text = raw.strip().rpartition(":")
    # isascii(): str.isdigit() also accepts '²' (int() then fails: a 500) and '٣' (an alias of 3)
    seq_ok = seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 18
    if not sep or not client or not seq_ok:
        raise InvalidRequestId(
            f"X-Request-Id must be <client-id>:<seq> with a decimal seq, got {raw[:80]!r}"
        )
    if len(client) > 128 or not client.isprintable() or any(c.isspace() for c in client):
        raise InvalidRequestId("X-Request-Id client id must be 1-128 printable chars, no spaces")
    return client, int(seq_text)
