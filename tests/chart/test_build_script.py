"""images/build.sh against recording fakes of `docker`, the host `python3`, `uname`, `id` (a real
build is the container tier's job): which base it builds on (the public slim image by default, the
offline one with --base/BASE), and that the dependency wheels are chosen for the Docker ENGINE's
architecture, not the host's (a Mac on Apple Silicon says `arm64`, manylinux wants `aarch64`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_render import ROOT

SCRIPT = ROOT / "images" / "build.sh"
PUBLIC_BASE = "python:3.11.14-slim-bookworm"
OFFLINE_BASE = "local/python:3.11-bookworm"

# One fake for docker, python3 and uname: appends {"tool", "argv"} to $FAKE_LOG.
FAKE = r"""
import json, os, sys
tool = os.environ["FAKE_TOOL"]; argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"tool": tool, "argv": argv}) + "\n")
out, rc = "", 0
if tool == "uname":
    out = os.environ.get("FAKE_UNAME", "arm64")
elif tool == "id":
    out = "1000"  # a normal user: never root, whoever runs the tests
elif tool == "docker":
    if argv[:1] == ["version"]:
        out = os.environ["FAKE_ENGINE_ARCH"]
    elif argv[:2] == ["image", "inspect"] and "-f" in argv:
        out = "150000000"
    elif argv[:2] == ["image", "inspect"]:
        rc = 0 if argv[2] in os.environ.get("FAKE_IMAGES", "").split(",") else 1
    elif argv[:1] in (["info"], ["build"]) or argv[:2] == ["image", "prune"]:
        pass
    else:
        rc = 99
elif tool in ("python3", "venvpy"):
    if argv[:3] == ["-m", "pip", "--version"]:
        rc = int(os.environ.get("FAKE_NO_PIP", "0"))
    elif argv[:1] == ["-c"]:
        pass
    elif argv[:3] == ["-m", "pip", "wheel"]:
        wdir = argv[argv.index("-w") + 1]
        open(os.path.join(wdir, "raftkv-0.1.0-py3-none-any.whl"), "w").close()
    elif argv[:3] == ["-m", "pip", "download"]:
        pass
    else:
        rc = 99
if out:
    print(out)
sys.exit(rc)
"""


class Host:
    def __init__(self, tmp: Path) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        fake = tmp / "fake.py"
        fake.write_text(FAKE)
        for tool in ("docker", "python3", "uname", "id"):
            stub = self.bin / tool
            stub.write_text(f'#!/bin/sh\nFAKE_TOOL={tool} exec {sys.executable} {fake} "$@"\n')
            stub.chmod(0o755)
        self.log = tmp / "log.jsonl"
        self.tmp = tmp

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        full = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "FAKE_ENGINE_ARCH": "amd64",
            "FAKE_IMAGES": f"{PUBLIC_BASE},{OFFLINE_BASE}",
            "HOME": str(self.tmp),
            **env,
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args], env=full, capture_output=True, text=True, timeout=120
        )

    def argvs(self, tool: str) -> list[list[str]]:
        calls: list[dict[str, Any]] = [json.loads(ln) for ln in self.log.read_text().splitlines()]
        return [c["argv"] for c in calls if c["tool"] == tool]

    def download(self) -> list[str]:
        (argv,) = [a for a in self.argvs("python3") if a[:3] == ["-m", "pip", "download"]]
        return argv

    def build(self) -> list[str]:
        (argv,) = [a for a in self.argvs("docker") if a[:1] == ["build"]]
        return argv


def platforms(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.mark.parametrize(
    ("engine", "uname", "manylinux"),
    [
        ("arm64", "arm64", "aarch64"),  # Docker Desktop on Apple Silicon: the host says arm64
        ("amd64", "x86_64", "x86_64"),
        ("amd64", "arm64", "x86_64"),  # an arm64 host driving an amd64 engine: the engine wins
        ("arm64", "x86_64", "aarch64"),
    ],
)
def test_wheels_are_downloaded_for_the_engines_architecture(
    host: Host, engine: str, uname: str, manylinux: str
) -> None:
    result = host.run("reg/raftkv:t", FAKE_ENGINE_ARCH=engine, FAKE_UNAME=uname)
    assert result.returncode == 0, result.stderr
    assert ["version", "-f", "{{.Server.Arch}}"] in host.argvs("docker")
    download = host.download()
    assert platforms(download) == [
        f"manylinux2014_{manylinux}", f"manylinux_2_28_{manylinux}",
        f"manylinux_2_34_{manylinux}",
    ]  # fmt: skip
    assert download[download.index("--python-version") + 1] == "3.11"
    assert "built reg/raftkv:t: 150.0 MB" in result.stdout


def test_public_slim_base_is_the_default(host: Host) -> None:
    result = host.run("reg/raftkv:t")
    assert result.returncode == 0, result.stderr
    build = host.build()
    assert build[build.index("--network") + 1] == "none"
    assert f"BASE={PUBLIC_BASE}" in build
    assert build[-3:-1] == ["-t", "reg/raftkv:t"]
    dockerfile = (ROOT / "images" / "raftkv" / "Dockerfile").read_text()
    assert f"ARG BASE={PUBLIC_BASE}\n" in dockerfile


def test_public_base_not_present_is_left_to_docker_build_to_pull(host: Host) -> None:
    result = host.run("reg/raftkv:t", FAKE_IMAGES="")
    assert result.returncode == 0, result.stderr
    assert "docker build pulls it" in result.stdout
    assert f"BASE={PUBLIC_BASE}" in host.build()


@pytest.mark.parametrize(
    ("args", "env", "base"),
    [
        (("--base", OFFLINE_BASE), {}, OFFLINE_BASE),
        ((), {"BASE": OFFLINE_BASE}, OFFLINE_BASE),
        (("--base", "python:3.11-slim"), {"BASE": OFFLINE_BASE}, "python:3.11-slim"),
    ],
)
def test_base_option_and_env(
    host: Host, args: tuple[str, ...], env: dict[str, str], base: str
) -> None:
    result = host.run(*args, "reg/raftkv:t", FAKE_IMAGES=f"{base}", **env)
    assert result.returncode == 0, result.stderr
    assert f"BASE={base}" in host.build()


def test_missing_offline_base_without_debootstrap_says_how(host: Host) -> None:
    result = host.run("--base", OFFLINE_BASE, "reg/raftkv:t", FAKE_IMAGES="")
    assert result.returncode == 1
    assert "needs root and debootstrap" in result.stderr
    assert not [a for a in host.argvs("docker") if a[:1] == ["build"]]


def test_unsupported_engine_architecture_is_one_clear_error(host: Host) -> None:
    result = host.run("reg/raftkv:t", FAKE_ENGINE_ARCH="s390x")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "build.sh: unsupported Docker engine architecture 's390x' (amd64 or arm64 only)"
    )
    assert not [a for a in host.argvs("docker") if a[:1] == ["build"]]
    assert not [a for a in host.argvs("python3") if a[:3] == ["-m", "pip", "download"]]


def test_python_without_pip_points_at_the_venv(host: Host) -> None:
    result = host.run("reg/raftkv:t", FAKE_NO_PIP="1")
    assert result.returncode == 1
    assert "python3 has no pip: run from the project's venv" in result.stderr
    assert not [a for a in host.argvs("docker") if a[:1] == ["build"]]


def test_python_option_selects_the_interpreter(host: Host, tmp_path: Path) -> None:
    other = tmp_path / "venv-python"  # the same fake, logging as "venvpy"
    other.write_text((host.bin / "python3").read_text().replace("=python3 ", "=venvpy "))
    other.chmod(0o755)
    result = host.run("--python", str(other), "reg/raftkv:t")
    assert result.returncode == 0, result.stderr
    assert [a[:3] for a in host.argvs("venvpy") if a[:2] == ["-m", "pip"]] == [
        ["-m", "pip", "--version"], ["-m", "pip", "wheel"], ["-m", "pip", "download"],
    ]  # fmt: skip
    assert host.argvs("python3") == []


@pytest.mark.parametrize(
    "args", [(), ("--base",), ("--bogus", "t"), ("a", "b"), ("--python", "", "t")]
)
def test_bad_arguments_print_usage(host: Host, args: tuple[str, ...]) -> None:
    result = host.run(*args)
    assert result.returncode == 2
    assert "usage: images/build.sh [--base IMAGE] [--python PYTHON] TAG" in result.stderr
    assert host.argvs("docker") == []
