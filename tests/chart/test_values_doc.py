"""The chart's values documentation has one source: each value's ``## @param`` line in
values.yaml. The README's table and the schema's descriptions are generated from it
(tools/gen_values_doc.py) and must be current."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.chart.chart_render import CHART_DIR, ROOT
from tools.gen_values_doc import README, SCHEMA, VALUES, params, readme, schema

SCRIPT = ROOT / "tools" / "gen_values_doc.py"


def test_the_generated_table_and_schema_descriptions_are_current() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


def test_the_readme_table_lists_every_param_once() -> None:
    doc = (CHART_DIR / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|", doc, flags=re.MULTILINE)
    names = [p.path for p in params(VALUES.read_text())]
    assert len(rows) == len(set(rows))
    assert set(names) - set(rows) == set(), "values missing from the chart README's table"
    assert set(rows) - set(names) == set(), "the chart README documents values the chart lacks"


def test_every_schema_description_is_the_param_line() -> None:
    doc = json.loads(SCHEMA.read_text())
    for p in params(VALUES.read_text()):
        node = doc
        for part in p.path.split("."):
            node = node["properties"][part]
        assert node["description"] == p.description, p.path


def test_a_changed_param_line_makes_both_stale() -> None:
    values = VALUES.read_text()
    edited = values.replace(
        "## @param image.pullPolicy Image pull policy",
        "## @param image.pullPolicy When to pull the image",
        1,
    )
    assert edited != values
    current_readme, current_schema = README.read_text(), SCHEMA.read_text()
    new_readme = readme(current_readme, edited)
    assert (
        new_readme != current_readme
        and "| `image.pullPolicy` | When to pull the image" in new_readme
    )
    assert '"description": "When to pull the image' in schema(current_schema, edited)


def test_the_check_fails_on_a_hand_edited_table_and_a_run_repairs_it(tmp_path: Path) -> None:
    for f in (VALUES, README, SCHEMA):
        shutil.copy(f, tmp_path / f.name)
    copy = tmp_path / README.name
    copy.write_text(copy.read_text().replace("| `replicaCount` |", "| `replicas` |"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--chart", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    stale = run("--check")
    assert stale.returncode == 1 and f"{copy} is stale" in stale.stderr, stale.stderr
    assert "values.schema.json" not in stale.stderr
    assert run().returncode == 0
    assert copy.read_text() == README.read_text()
    assert run("--check").returncode == 0
