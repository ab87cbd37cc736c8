"""The real image, built by images/build.sh with the local Docker engine, run as the chart runs it.

Three node containers get the rendered StatefulSet's environment and securityContext on a
private ``--internal`` network with the pod DNS names ``raft-N.raft-service`` as aliases; the
client container runs the rendered client Pod's commands (``raftkv-wait-ready`` then ``raftctl
verify --endpoints http://raft-0.raft-service:8000,...``). The scenario is the original
assignment's: election, writes, ``docker kill`` of the leader's container and its restart,
``docker stop`` of a container — and at the end every write the cluster acknowledged is read
back from every node.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.chart_render import Rendered, load_chart, render
from tests.containers.docker_cluster import (
    BASE_IMAGE,
    DockerCluster,
    Node,
    docker,
    http,
    wait_until,
)

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
ELECTION_S = 30.0  # generous: 2 shared cores, other test suites running
HEALTH_S = 60.0


@pytest.fixture(scope="module")
def rendered() -> Iterator[Rendered]:
    chart = load_chart()
    try:
        yield render(chart, {"auth": {"token": f"container-test-{secrets.token_hex(12)}"}})
    finally:
        chart.close()


@pytest.fixture(scope="module")
def image(container_tier: None) -> Iterator[dict[str, Any]]:
    """Build the image for real (the base image too, if missing); remove it afterwards."""
    tag = f"raftkv-test:{secrets.token_hex(4)}"
    began = time.monotonic()
    proc = subprocess.run(
        # explicit: the offline base (CI has no registry) and this interpreter (it has pip)
        [str(ROOT / "images" / "build.sh"), "--base", BASE_IMAGE, "--python", sys.executable, tag],
        capture_output=True,
        text=True,
        timeout=420,
        env={**os.environ},
    )
    assert proc.returncode == 0, f"images/build.sh failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    match = re.search(r"^built \S+: ([\d.]+) MB", proc.stdout, flags=re.MULTILINE)
    assert match, proc.stdout
    try:
        yield {"tag": tag, "size_mb": float(match.group(1)), "build_s": time.monotonic() - began}
    finally:
        docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def cluster(image: dict[str, Any], rendered: Rendered) -> Iterator[DockerCluster]:
    secrets_map = {
        (s["metadata"]["name"], key): base64.b64decode(value).decode()
        for s in rendered.find("Secret")
        for key, value in s["data"].items()
    }
    c = DockerCluster(
        image=image["tag"], node_env=rendered.node_container()["env"], secrets=secrets_map
    )
    try:
        c.start()
        yield c
    finally:
        c.close()


def test_image_is_the_one_the_chart_expects(image: dict[str, Any]) -> None:
    config = docker("image", "inspect", "-f", "{{json .Config}}", image["tag"]).stdout
    cfg = json.loads(config)
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["raftkv", "serve"]  # exec form: PID 1 is gunicorn's master
    assert "/data" in cfg["Volumes"]
    assert "8000/tcp" in cfg["ExposedPorts"]
    assert "RAFTKV_DATA_DIR=/data" in cfg["Env"]
    print(f"\nimage {image['tag']}: {image['size_mb']:.1f} MB, built in {image['build_s']:.1f}s")
    assert image["size_mb"] < 250


# ---------------------------------------------------------------- helpers for the scenario


class Writer:
    """Writes unique keys through any live node and remembers what the cluster acknowledged."""

    def __init__(self, cluster: DockerCluster) -> None:
        self.cluster = cluster
        self.acked: dict[str, str] = {}
        self.client = f"ctest{secrets.token_hex(3)}"
        self.seq = 0

    def put(self, key: str, value: str, live: list[Node], timeout: float = 30.0) -> None:
        self.seq += 1
        request_id = f"{self.client}:{self.seq}"  # retried attempts are applied once

        def attempt() -> bool:
            for node in live:
                try:
                    reply = http(
                        "PUT",
                        f"{node.url}/v1/kv/{key}",
                        value.encode(),
                        timeout=6,
                        headers={"X-Request-Id": request_id},
                    )
                except OSError:
                    continue
                if reply.status == 200:
                    assert reply.body["value"] == value
                    return True
            return False

        wait_until(attempt, timeout, f"an acknowledged PUT {key}", interval=0.3)
        self.acked[key] = value

    def write_batch(self, tag: str, count: int, live: list[Node]) -> None:
        for i in range(count):
            self.put(f"ctest/{tag}/{i}", f"{tag}-value-{i}", live)

    def check_all(self, nodes: list[Node]) -> None:
        """Every acknowledged write, read linearizably through every given node."""
        for node in nodes:
            for key, value in self.acked.items():
                reply = http("GET", f"{node.url}/v1/kv/{key}", timeout=10)
                assert reply.status == 200, f"{node.pod}: GET {key} -> {reply.status} {reply.body}"
                assert reply.body["value"] == value, f"{node.pod}: {key} lost its acked value"


def _client_pod(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.client_pod()["spec"]
    return spec


def _run_client_pod(cluster: DockerCluster, rendered: Rendered) -> str:
    """The chart's client Pod: its init container, then `raftctl verify`; returns the output."""
    spec = _client_pod(rendered)
    (init,) = spec["initContainers"]
    (main,) = spec["containers"]
    wait = cluster.run_client(init["command"], {}, timeout=120)
    assert wait.returncode == 0, f"wait-ready failed: {wait.stdout}{wait.stderr}"
    env = {"HOME": "/tmp", "RAFTCTL_TOKEN": cluster.secrets[("raftkv-token", "token")]}
    verify = cluster.run_client(main["command"], env, timeout=180)
    out = verify.stdout + verify.stderr
    assert verify.returncode == 0, f"raftctl verify failed ({verify.returncode}):\n{out}"
    return out


def _wait_leader(
    cluster: DockerCluster, among: list[Node], what: str, not_before_term: int = 0
) -> tuple[Node, int]:
    def agreed() -> tuple[Node, int] | None:
        found = cluster.leader(among)
        return found if found and found[1] > not_before_term else None

    result: tuple[Node, int] = wait_until(agreed, ELECTION_S, what)
    return result


def _wait_caught_up(cluster: DockerCluster, node: Node, leader: Node) -> None:
    def caught_up() -> bool:
        mine, theirs = cluster.status(node), cluster.status(leader)
        return bool(mine and theirs and mine["last_applied"] >= theirs["commit_index"] > 0)

    wait_until(caught_up, HEALTH_S, f"{node.pod} caught up with {leader.pod}")


# ---------------------------------------------------------------- the scenario


def test_three_containers_survive_kill_and_stop_without_losing_acked_writes(
    cluster: DockerCluster, rendered: Rendered
) -> None:
    nodes = cluster.nodes
    token = cluster.secrets[("raftkv-token", "token")]
    try:
        for n in nodes:
            wait_until(
                lambda n=n: http("GET", f"{n.url}/healthz", timeout=2).status == 200,
                HEALTH_S,
                f"{n.pod} /healthz",
            )
        leader, term = _wait_leader(cluster, nodes, "a leader all three agree on")
        for n in nodes:
            status = cluster.status(n)
            assert status is not None
            assert sorted(status["members"]) == ["raft-0", "raft-1", "raft-2"], status
        # Raft RPC needs the rendered Secret's token; the KV API and probes do not.
        rpc = f"{leader.url}/raft/v1/messages"
        json_ct = {"Content-Type": "application/json"}
        assert http("POST", rpc, b'{"messages": []}', headers=json_ct).status in (401, 403)
        authed = {**json_ct, "Authorization": f"Bearer {token}"}
        assert http("POST", rpc, b'{"messages": []}', headers=authed).status == 200
        wait_until(
            lambda: http("GET", f"{leader.url}/readyz").status == 200, HEALTH_S, "leader /readyz"
        )

        writer = Writer(cluster)
        writer.write_batch("phase1", 10, nodes)
        out = _run_client_pod(cluster, rendered)
        print("\n--- raftctl verify (all nodes up)\n" + out)

        # Fault 1: docker kill (SIGKILL) of the leader's container, then its restart.
        killed = leader
        cluster.kill(killed)
        survivors = [n for n in nodes if n is not killed]
        new_leader, _ = _wait_leader(
            cluster, survivors, "a new leader after docker kill", not_before_term=term
        )
        assert new_leader is not killed
        writer.write_batch("after-kill", 10, survivors)
        out = _run_client_pod(cluster, rendered)  # one endpoint is down: verify still passes
        print("\n--- raftctl verify (leader killed)\n" + out)
        cluster.start_again(killed)
        wait_until(
            lambda: http("GET", f"{killed.url}/healthz", timeout=2).status == 200,
            HEALTH_S,
            f"{killed.pod} back after docker start",
        )
        _wait_caught_up(cluster, killed, new_leader)
        leader, term = _wait_leader(cluster, nodes, "one leader for all three after the restart")

        # Fault 2: docker stop (SIGTERM, graceful) of the current leader's container.
        stopped = leader
        took = cluster.stop(stopped, timeout=30)
        assert cluster.exit_code(stopped) == 0, cluster.logs(stopped)
        assert took < 25, f"docker stop took {took:.1f}s: SIGTERM did not reach gunicorn"
        stop_log = cluster.logs(stopped, tail=400)
        assert "event=sigterm" in stop_log, f"SIGTERM never reached the node:\n{stop_log}"
        assert "event=transfer-leadership" in stop_log, f"no leadership handover:\n{stop_log}"
        survivors = [n for n in nodes if n is not stopped]
        new_leader, _ = _wait_leader(
            cluster, survivors, "a new leader after docker stop", not_before_term=term
        )
        writer.write_batch("after-stop", 10, survivors)
        out = _run_client_pod(cluster, rendered)
        print("\n--- raftctl verify (leader stopped)\n" + out)
        writer.check_all(survivors)
        cluster.start_again(stopped)
        wait_until(
            lambda: http("GET", f"{stopped.url}/healthz", timeout=2).status == 200,
            HEALTH_S,
            f"{stopped.pod} back after docker start",
        )
        _wait_caught_up(cluster, stopped, new_leader)

        # Nothing acknowledged was lost, on any node.
        _wait_leader(cluster, nodes, "one leader for all three at the end")
        writer.check_all(nodes)
        assert len(writer.acked) == 30
    except BaseException:
        for n in nodes:
            print(f"\n--- logs of {n.container}\n{cluster.logs(n)}")
        raise


def test_wait_ready_gives_up_with_one_line(cluster: DockerCluster) -> None:
    proc = cluster.run_client(
        ["raftkv-wait-ready", "--timeout", "2", f"http://{cluster.subnet}.1:9/readyz"],
        {},
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("raftkv-wait-ready: not ready after 2s:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_raftkv_http_talks_to_pods_by_their_full_dns_names(cluster: DockerCluster) -> None:
    """The image's small curl (`raftkv http`), as NOTES.txt and docs/kubernetes.md use it."""
    url = "http://raft-1.raft-service.default.svc.cluster.local:8000/v1/status"

    def answered() -> dict[str, Any] | None:
        proc = cluster.run_client(["raftkv", "http", "GET", url], {}, timeout=60)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    status = wait_until(answered, HEALTH_S, "raftkv http GET of raft-1's /v1/status")
    assert status["id"] == "raft-1"
    stale_read = url.replace("/v1/status", "/v1/kv/no-such-key?consistency=stale")
    missing = cluster.run_client(["raftkv", "http", "GET", stale_read], {}, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.startswith("HTTP 404"), missing.stderr


def test_scale_3_to_5_to_3_like_kubectl_scale_then_membership_through_the_log(
    cluster: DockerCluster,
) -> None:
    """docs/membership.md on the chart's pods: `kubectl scale --replicas=5` starts raft-3 and
    raft-4 with the pod template's RAFTKV_REPLICAS=3, so they join (never campaign, NotReady)
    until added as learners and promoted through the admin API; then they are removed through
    the log and their containers stopped. No acknowledged write is lost on the way."""
    token = cluster.secrets[("raftkv-token", "token")]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    nodes = list(cluster.nodes[:3])
    leader, term = _wait_leader(cluster, nodes, "a leader before scaling")
    writer = Writer(cluster)
    writer.write_batch("scale-before", 5, nodes)
    added = [cluster.start_node(3), cluster.start_node(4)]
    try:
        for n in added:
            wait_until(
                lambda n=n: (cluster.status(n) or {}).get("role") == "joining",
                HEALTH_S,
                f"{n.pod} joining",
            )
            assert http("GET", f"{n.url}/readyz").status == 503
        assert _wait_leader(cluster, nodes, "the same leader while they join")[1] == term
        for n in added:
            body = json.dumps(
                {"id": n.pod, "url": f"http://{n.pod}.raft-service.default.svc.cluster.local:8000"}
            ).encode()
            r = http("POST", f"{leader.url}/v1/admin/members", body, timeout=15, headers=auth)
            assert r.status == 200, r
            wait_until(
                lambda n=n: http("GET", f"{n.url}/readyz").status == 200,
                HEALTH_S,
                f"{n.pod} caught up",
            )
            r = http(
                "POST",
                f"{leader.url}/v1/admin/members/{n.pod}/promote",
                b"",
                timeout=15,
                headers=auth,
            )
            assert r.status == 200, r
        r = http("GET", f"{nodes[1].url}/v1/members")
        assert sorted(m["id"] for m in r.body["members"] if m["role"] == "voter") == [
            f"raft-{i}" for i in range(5)
        ], r
        writer.write_batch("scale-five", 5, nodes + added)
        for n in reversed(added):
            r = http("DELETE", f"{leader.url}/v1/admin/members/{n.pod}", timeout=15, headers=auth)
            assert r.status == 200, r
            cluster.stop(n, timeout=30)
        r = http("GET", f"{nodes[0].url}/v1/members")
        assert sorted(m["id"] for m in r.body["members"]) == ["raft-0", "raft-1", "raft-2"], r
        writer.write_batch("scale-three", 5, nodes)
        writer.check_all(nodes)
    except BaseException:
        for n in nodes + added:
            print(f"\n--- logs of {n.container}\n{cluster.logs(n)}")
        raise
