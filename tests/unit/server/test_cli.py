"""The raftkv command: one-line errors with exit 2, version, check-data."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftkv import __version__
from raftkv.cli import main
from raftkv.storage import Storage


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"raftkv {__version__}"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["serve", "--port", "abc"], "--port/RAFTKV_PORT"),
        (["serve", "--peers", "raft-9=h", "--id", "raft-0"], "explicit port"),
        (["serve", "--election-ms", "5"], "--election-ms"),
    ],
)
def test_serve_bad_config_is_one_line_exit_2(
    argv: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAFTKV_PORT", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.startswith("raftkv: error:") and "\n" not in err


def test_unknown_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--bogus", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "unrecognized arguments" in err and "\n" not in err


def test_env_is_read_by_serve(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAFTKV_HEARTBEAT_MS", "zero")
    assert main(["serve"]) == 2
    assert "--heartbeat-ms/RAFTKV_HEARTBEAT_MS" in capsys.readouterr().err


def test_check_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    st = Storage.open(str(tmp_path / "d"))
    st.close()
    assert main(["check-data", str(tmp_path / "d")]) == 0


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err
