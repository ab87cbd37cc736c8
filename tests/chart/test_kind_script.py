"""kind-with-registry.sh, run against recording fakes of docker/kind/kubectl (no kind can run on
CI): the exact commands it issues on a fresh machine, that a second run creates nothing again,
that it repairs a stopped or removed registry and its network attachment, that an existing cluster
is checked (containerd reads certs.d, enough workers) rather than reused blindly, --delete, and the
clear errors (too few workers, a missing tool). Also `bash -n`, and shellcheck when it is
installed. Whether the real cluster then works was not verifiable here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_render import ROOT

SCRIPT = ROOT / "kind-with-registry.sh"

# One fake for the three tools: it appends {"tool", "argv", "stdin"} to $FAKE_LOG and keeps the
# world (registry state, clusters, nodes, network attachment) in $FAKE_STATE.
FAKE = r"""
import json, os, sys
tool = os.environ["FAKE_TOOL"]; argv = sys.argv[1:]
state_path = os.environ["FAKE_STATE"]
with open(state_path) as f:
    st = json.load(f)
stdin = ""
if (tool == "docker" and argv[:2] == ["exec", "-i"]) or (tool == "kubectl" and "-f" in argv):
    stdin = sys.stdin.read()
config = ""
if tool == "kind" and "--config" in argv:
    with open(argv[argv.index("--config") + 1]) as f:
        config = f.read()
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"tool": tool, "argv": argv, "stdin": stdin, "config": config}) + "\n")
out, rc = "", 0
if tool == "docker":
    if argv[0] == "info":
        pass
    elif argv[0] == "inspect" and "{{.State.Running}}" in argv:
        if st["registry"] == "missing":
            rc = 1
        else:
            out = "true" if st["registry"] == "running" else "false"
    elif argv[0] == "inspect" and "{{json .NetworkSettings.Networks.kind}}" in argv:
        out = '{"IPAddress":"172.18.0.9"}' if st["on_kind"] else "null"
    elif argv[0] == "inspect":
        rc = 0 if st["registry"] != "missing" else 1
    elif argv[0] == "run":
        st["registry"] = "running"; out = "0123abcd"
    elif argv[0] == "start":
        st["registry"] = "running"
    elif argv[:2] == ["rm", "-f"]:
        st["registry"] = "missing"; st["on_kind"] = False
    elif argv[:2] == ["network", "connect"]:
        st["on_kind"] = True
    elif argv[0] == "exec" and "containerd config dump" in " ".join(argv):
        rc = 1 if argv[1] in st.get("unwired", []) else 0
    elif argv[0] == "exec":
        pass
    else:
        rc = 99
elif tool == "kind":
    name = argv[argv.index("--name") + 1] if "--name" in argv else "kind"  # kind's own default
    if argv[:2] == ["get", "clusters"]:
        out = "\n".join(st["clusters"])
    elif argv[:2] == ["get", "nodes"]:
        out = "\n".join(st["nodes"].get(name, []))
    elif argv[:2] == ["create", "cluster"]:
        workers = config.count("role: worker")
        st["clusters"].append(name)
        st["nodes"][name] = [f"{name}-control-plane"] + [
            f"{name}-worker{'' if i == 1 else i}" for i in range(1, workers + 1)]
    elif argv[:2] == ["delete", "cluster"]:
        st["clusters"].remove(name); st["nodes"].pop(name)
    else:
        rc = 99
elif tool == "kubectl":
    out = "NAME STATUS" if "get" in argv else ""
else:
    rc = 98
with open(state_path, "w") as f:
    json.dump(st, f)
if out:
    print(out)
sys.exit(rc)
"""


class World:
    def __init__(self, tmp: Path, tools: tuple[str, ...] = ("docker", "kind", "kubectl")) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        fake = tmp / "fake.py"
        fake.write_text(FAKE)
        for tool in tools:  # the fake dispatches on FAKE_TOOL
            stub = self.bin / tool
            stub.write_text(f'#!/bin/sh\nFAKE_TOOL={tool} exec {sys.executable} {fake} "$@"\n')
            stub.chmod(0o755)
        # Only what the script needs from the system, so a real kind/docker never answers instead.
        for util in ("sh", "sed", "grep", "mktemp", "rm"):
            found = shutil.which(util)
            assert found, util
            (self.bin / util).symlink_to(found)
        self.extra_env: dict[str, str] = {}
        self.state = tmp / "state.json"
        self.log = tmp / "log.jsonl"
        self.state.write_text(
            json.dumps({"registry": "missing", "on_kind": False, "clusters": [], "nodes": {}})
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        env = {
            "PATH": str(self.bin),
            "FAKE_STATE": str(self.state),
            "FAKE_LOG": str(self.log),
            "HOME": str(self.bin.parent),
            "TMPDIR": str(self.bin.parent),
            **self.extra_env,
        }
        return subprocess.run(
            [str(self.bin / "sh"), str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self, tool: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls() if c["tool"] == tool]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_fresh_machine_creates_registry_cluster_and_wiring(world: World) -> None:
    result = world.run()
    assert result.returncode == 0, result.stderr
    docker = world.argvs("docker")
    assert [
        "run",
        "-d",
        "--restart=always",
        "-p",
        "127.0.0.1:5001:5000",
        "--network",
        "bridge",
        "--name",
        "kind-registry",
        "registry:2",
    ] in docker
    (create,) = [
        c for c in world.calls() if c["tool"] == "kind" and c["argv"][:2] == ["create", "cluster"]
    ]
    assert create["argv"][:4] == ["create", "cluster", "--name", "raftkv"]
    config = create["config"]
    assert config.count("role: control-plane") == 1 and config.count("role: worker") == 4
    assert '[plugins."io.containerd.grpc.v1.cri".registry]' in config
    assert 'config_path = "/etc/containerd/certs.d"' in config
    nodes = ["raftkv-control-plane", "raftkv-worker", "raftkv-worker2", "raftkv-worker3",
             "raftkv-worker4"]  # fmt: skip
    reg_dir = "/etc/containerd/certs.d/localhost:5001"
    for node in nodes:
        assert [
            "exec",
            node,
            "sh",
            "-c",
            "containerd config dump 2>/dev/null | grep -q /etc/containerd/certs.d",
        ] in docker
        assert ["exec", node, "mkdir", "-p", reg_dir] in docker
        (cp,) = [c for c in world.calls() if c["argv"][:3] == ["exec", "-i", node]]
        assert cp["argv"][3:] == ["cp", "/dev/stdin", f"{reg_dir}/hosts.toml"]
        assert cp["stdin"] == '[host."http://kind-registry:5000"]\n'
    assert ["network", "connect", "kind", "kind-registry"] in docker
    (apply,) = [c for c in world.calls() if c["tool"] == "kubectl" and "apply" in c["argv"]]
    assert apply["argv"] == ["--context", "kind-raftkv", "apply", "-f", "-"]
    assert "name: local-registry-hosting" in apply["stdin"]
    assert "namespace: kube-public" in apply["stdin"]
    assert 'host: "localhost:5001"' in apply["stdin"]


def test_second_run_creates_nothing_again(world: World) -> None:
    assert world.run().returncode == 0
    result = world.run()
    assert result.returncode == 0, result.stderr
    docker = world.argvs("docker")
    assert not [a for a in docker if a[0] in ("run", "start") or a[:2] == ["network", "connect"]]
    assert not [a for a in world.argvs("kind") if a[0] == "create"]
    assert "already running" in result.stdout and "already exists" in result.stdout
    # the per-node registry config and the ConfigMap are re-applied (repairs, never duplicates)
    assert sum(1 for a in docker if a[:2] == ["exec", "-i"]) == 5


def test_stopped_registry_is_started_not_recreated(world: World) -> None:
    assert world.run().returncode == 0
    state = json.loads(world.state.read_text())
    state["registry"] = "stopped"
    world.state.write_text(json.dumps(state))
    assert world.run().returncode == 0
    docker = world.argvs("docker")
    assert ["start", "kind-registry"] in docker
    assert not [a for a in docker if a[0] == "run"]


def test_registry_detached_from_kind_network_is_reattached(world: World) -> None:
    assert world.run().returncode == 0
    state = json.loads(world.state.read_text())
    state["on_kind"] = False
    world.state.write_text(json.dumps(state))
    assert world.run().returncode == 0
    assert ["network", "connect", "kind", "kind-registry"] in world.argvs("docker")
    assert not [a for a in world.argvs("kind") if a[0] == "create"]


def test_custom_name_and_workers(world: World) -> None:
    result = world.run("--name", "other", "--workers", "3")
    assert result.returncode == 0, result.stderr
    (create,) = [c for c in world.calls() if c["argv"][:2] == ["create", "cluster"]]
    assert create["argv"][2:4] == ["--name", "other"]
    assert create["config"].count("role: worker") == 3
    assert ["exec", "other-worker3", "mkdir", "-p", "/etc/containerd/certs.d/localhost:5001"] in (
        world.argvs("docker")
    )


def preexisting(world: World, name: str, workers: int, *, unwired: bool) -> None:
    """A cluster somebody made before, without this script (no registry yet)."""
    state = json.loads(world.state.read_text())
    nodes = [f"{name}-control-plane"] + [
        f"{name}-worker{'' if i == 1 else i}" for i in range(1, workers + 1)
    ]
    state["clusters"].append(name)
    state["nodes"][name] = nodes
    state["unwired"] = nodes if unwired else []
    world.state.write_text(json.dumps(state))


def test_kinds_own_default_cluster_is_never_reused(world: World) -> None:
    preexisting(world, "kind", 0, unwired=True)  # `kind create cluster`: one node, no registry
    result = world.run()
    assert result.returncode == 0, result.stderr
    (create,) = [a for a in world.argvs("kind") if a[:2] == ["create", "cluster"]]
    assert create[:4] == ["create", "cluster", "--name", "raftkv"]
    assert not [a for a in world.argvs("docker") if a[:2] == ["exec", "kind-control-plane"]]


def test_existing_cluster_without_registry_config_is_refused_with_the_way_out(
    world: World,
) -> None:
    preexisting(world, "raftkv", 4, unwired=True)
    result = world.run()
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "kind-with-registry.sh: kind cluster raftkv was not created by this script: node "
        "raftkv-control-plane's containerd does not read /etc/containerd/certs.d, so it cannot "
        "pull localhost:5001/* — delete it (kind delete cluster --name raftkv) or use another name "
        "(--name NAME; raftctl: --kind-cluster NAME)"
    )
    assert not [a for a in world.argvs("kind") if a[0] == "create"]
    assert not [a for a in world.argvs("docker") if a[:2] == ["exec", "-i"]]
    assert not [c for c in world.calls() if c["tool"] == "kubectl"]


def test_existing_wired_cluster_gets_the_missing_registry_and_wiring(world: World) -> None:
    preexisting(world, "raftkv", 4, unwired=False)  # e.g. a recent kind: certs.d by default
    result = world.run()
    assert result.returncode == 0, result.stderr
    docker = world.argvs("docker")
    assert ["run", "-d", "--restart=always", "-p", "127.0.0.1:5001:5000", "--network", "bridge",
            "--name", "kind-registry", "registry:2"] in docker  # fmt: skip
    assert ["network", "connect", "kind", "kind-registry"] in docker
    assert sum(1 for a in docker if a[:2] == ["exec", "-i"]) == 5
    assert [c for c in world.calls() if c["tool"] == "kubectl" and "apply" in c["argv"]]
    assert not [a for a in world.argvs("kind") if a[0] == "create"]
    assert "WARNING" not in result.stderr


def test_existing_cluster_with_too_few_workers_is_warned_about(world: World) -> None:
    preexisting(world, "raftkv", 1, unwired=False)
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        "kind-with-registry.sh: WARNING: cluster raftkv has 1 worker(s); the chart puts each of "
        "its 3 replicas on its own worker (required anti-affinity), so pods would stay Pending — "
        "recreate it with --workers 3 or more, or install with --set antiAffinity=soft"
    )


def test_removed_registry_is_recreated_and_reattached(world: World) -> None:
    assert world.run().returncode == 0
    state = json.loads(world.state.read_text())
    state["registry"] = "missing"
    state["on_kind"] = False
    world.state.write_text(json.dumps(state))
    assert world.run().returncode == 0
    docker = world.argvs("docker")
    assert [a for a in docker if a[0] == "run"]
    assert ["network", "connect", "kind", "kind-registry"] in docker


def test_env_overrides_the_cluster_name(world: World) -> None:
    world.extra_env["KIND_CLUSTER_NAME"] = "mine"
    assert world.run().returncode == 0
    (create,) = [a for a in world.argvs("kind") if a[:2] == ["create", "cluster"]]
    assert create[:4] == ["create", "cluster", "--name", "mine"]


def test_delete_removes_cluster_and_registry(world: World) -> None:
    assert world.run().returncode == 0
    result = world.run("--delete")
    assert result.returncode == 0, result.stderr
    assert ["delete", "cluster", "--name", "raftkv"] in world.argvs("kind")
    assert ["rm", "-f", "kind-registry"] in world.argvs("docker")
    assert world.run("--delete").returncode == 0  # nothing left: still fine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workers", "2"), "--workers must be at least 3 (one per Raft replica), got 2"),
        (("--workers", "many"), "--workers must be a number, got 'many'"),
        (("--bogus",), "unknown argument: --bogus (try --help)"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    world: World, args: tuple[str, ...], message: str
) -> None:
    result = world.run(*args)
    assert result.returncode != 0
    assert result.stderr.strip() == f"kind-with-registry.sh: {message}"
    assert world.calls() == []


def test_missing_tool_is_named(tmp_path: Path) -> None:
    w = World(tmp_path, tools=("docker", "kubectl"))
    result = w.run()
    assert result.returncode != 0
    assert "kind is not installed" in result.stderr


def test_script_parses_and_is_shellcheck_clean() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    for script in (SCRIPT, ROOT / "images" / "build.sh", ROOT / "images" / "base" / "mkbase.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck); bash -n passed")
    scripts = [SCRIPT, ROOT / "images" / "build.sh", ROOT / "images" / "base" / "mkbase.sh"]
    result = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0, result.stdout
