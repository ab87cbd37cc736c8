"""kv/ has no HTTP in it: its modules import no web framework and nothing of the server or of the
node's HTTP-aware error tree, and its refusals carry a machine code but no status."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import raftkv.kv
from raftkv.errors import (
    RaftkvError,
    RequestIdConflictError,
    RequestIdReusedError,
    SessionExpiredError,
    refusal_error,
)
from raftkv.kv.errors import RequestIdConflict, RequestIdReused, SessionExpired

KV_DIR = Path(raftkv.kv.__file__).parent
FORBIDDEN = ("flask", "werkzeug", "http", "raftkv.errors", "raftkv.server", "requests")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(KV_DIR.glob("*.py")), ids=lambda p: p.name)
def test_kv_modules_import_nothing_http(path: Path) -> None:
    bad = {n for n in _imports(path) for f in FORBIDDEN if n == f or n.startswith(f + ".")}
    assert bad == set(), f"{path.name} imports {sorted(bad)}"


def test_refusals_carry_a_code_and_no_status() -> None:
    for cls, code in (
        (RequestIdConflict, "request_id_conflict"),
        (SessionExpired, "session_expired"),
        (RequestIdReused, "request_id_reused"),
    ):
        assert cls.code == code
        assert not hasattr(cls, "status")
        assert not issubclass(cls, RaftkvError)


@pytest.mark.parametrize(
    ("refusal", "node_error", "code"),
    [
        (RequestIdConflict("old"), RequestIdConflictError, "request_id_conflict"),
        (SessionExpired("evicted"), SessionExpiredError, "session_expired"),
        (RequestIdReused("other request"), RequestIdReusedError, "request_id_reused"),
    ],
)
def test_refusal_error_is_the_nodes_409_and_still_the_refusal(
    refusal: RequestIdConflict, node_error: type[RaftkvError], code: str
) -> None:
    err = refusal_error(refusal)
    assert type(err) is node_error
    assert isinstance(err, type(refusal)) and isinstance(err, RaftkvError)
    assert err.status == 409 and err.code == code
    assert err.payload() == {"error": str(refusal), "code": code}
    assert refusal_error(err) is err
