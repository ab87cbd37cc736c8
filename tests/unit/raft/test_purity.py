"""The core is pure: every module of raftkv/raft imports only an allow-list (STYLE.md rule 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import raftkv.raft

ALLOWED = {
    "__future__",
    "base64",
    "binascii",
    "collections",
    "dataclasses",
    "enum",
    "itertools",
    "json",
    "logging",
    "math",
    "random",
    "typing",
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the package
                continue
            found.append(node.module or "")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in {
            "__import__",
            "open",
            "exec",
            "eval",
        }:
            found.append(f"<call {node.func.id}>")  # type: ignore[attr-defined]
    return found


def _allowed(name: str) -> bool:
    if name == "raftkv.raft" or name.startswith("raftkv.raft."):
        return True
    return name.split(".")[0] in ALLOWED


def test_core_modules_import_only_the_allow_list() -> None:
    pkg = Path(raftkv.raft.__file__).parent
    modules = sorted(pkg.glob("*.py"))
    assert len(modules) >= 8
    bad = {p.name: names for p in modules if (names := [n for n in _imports(p) if not _allowed(n)])}
    assert not bad, f"impure imports in raftkv/raft: {bad}"


def test_scanner_catches_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("import time\nfrom os import path\nimport collections.abc\n")
    assert [n for n in _imports(f) if not _allowed(n)] == ["time", "os"]
