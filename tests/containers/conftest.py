"""The container tier needs a Docker engine and the locally built base image (or root + debootstrap
to build it). Where either is missing the whole tier is SKIPPED with the reason shown by `pytest
-ra` — except when RAFTKV_REQUIRE_CONTAINERS=1 (run-tests.sh sets it on CI, as root, after
starting dockerd): then a missing engine is a failure, never a silent skip."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.containers.docker_cluster import BASE_IMAGE


def container_tier_unavailable() -> str | None:
    """Why the container tier cannot run here, or None."""
    if os.environ.get("RAFTKV_SKIP_CONTAINERS") == "1":
        return "RAFTKV_SKIP_CONTAINERS=1"
    if shutil.which("docker") is None:
        return "docker CLI not installed (CI installs docker.io)"
    proc = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Docker engine not reachable: {last}"
    has_base = (
        subprocess.run(
            ["docker", "image", "inspect", BASE_IMAGE], capture_output=True, timeout=60
        ).returncode
        == 0
    )
    can_debootstrap = os.geteuid() == 0 and shutil.which("debootstrap") is not None
    if not has_base and BASE_IMAGE.startswith("local/") and not can_debootstrap:
        return (
            f"base image {BASE_IMAGE} is missing and cannot be built here (images/base/mkbase.sh "
            "needs root and debootstrap; or set BASE=python:3.11.14-slim-bookworm where pulls work)"
        )
    return None


@pytest.fixture(scope="session")
def container_tier() -> None:
    """Skip (or, when required, fail) every test that needs the Docker engine."""
    why = container_tier_unavailable()
    if why is None:
        return
    if os.environ.get("RAFTKV_REQUIRE_CONTAINERS") == "1" and not why.startswith("RAFTKV_SKIP"):
        pytest.fail(f"container tier REQUIRED (RAFTKV_REQUIRE_CONTAINERS=1) but unavailable: {why}")
    pytest.skip(f"container tier: {why}")
