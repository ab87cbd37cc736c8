"""kind_ops.py — `raftctl snapshot restore` and `raftctl recover` on the kind target.

Every command goes through the backend's ``shell.Runner`` with the kind context and namespace
(tests record the exact argv). docs/operations.md is the runbook; the chart side is the
``restore.*`` values (an init container seeds EMPTY data volumes from a Secret).

- ``restore_kind``: the release must have no PVCs (a NEW cluster); the backup (at most
  ``SECRET_LIMIT`` bytes: it travels in a Secret, which Kubernetes caps at 1 MiB) goes into Secret
  ``<release>-restore``; ``helm upgrade --install`` with ``restore.enabled=true``, the Secret's name
  and a new cluster id; every pod's init container runs ``raftkv restore --if-empty``.
- ``recover_kind``: scale the StatefulSet to 0; a one-off pod on the survivor's PVC runs
  ``raftkv recover``; scale to 1: the survivor runs alone (its MEMBERS.json overrides
  RAFTKV_REPLICAS). With ``replicas`` > 1: a one-off pod writes an offline backup of the
  survivor's whole log, raftctl copies it out (``kubectl cp``) and verifies it, uninstalls the
  release (the chart refuses a replicaCount change on a live one) and deletes its PVCs, and
  installs it again seeded from that file with the SAME cluster id.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from raftctl import backup_ops
from raftctl.backends.base import Reporter
from raftctl.backends.kind import STATEFULSET, KindBackend
from raftctl.backends.local.state import default_state_root
from raftctl.errors import RaftctlError, UsageError
from raftctl.shell import require
from raftkv.backup import BackupInfo
from raftkv.identity import new_cluster_id

__all__ = ["SECRET_LIMIT", "recover_kind", "restore_kind"]

SECRET_LIMIT = 1_000_000
POD_USER = 10001


def _secret(b: KindBackend) -> str:
    return f"{b.s.release}-restore"


def _pvcs(b: KindBackend) -> list[str]:
    out = b._run(
        b.kubectl("get", "pvc", "-l", f"app.kubernetes.io/instance={b.s.release}", "-o", "name")
    )
    return [line.strip() for line in out.splitlines() if line.strip()]


def _install_restored(
    b: KindBackend, backup: Path, replicas: int, cluster_id: str, reporter: Reporter
) -> None:
    require(b.runner, ["kubectl", "helm"], "restore on kind")
    b.check_workers(replicas)  # before a build or a Secret
    digest = b.pushed_digest()
    if digest is None:  # never pushed from here: build and push it, as `raftctl up` does
        b.build(reporter)
        digest = b.push(reporter)
    ns = b.runner.run(b.kubectl("get", "namespace", b.s.namespace), check=False)
    if ns.returncode != 0:
        b._run(b.kubectl("create", "namespace", b.s.namespace))
    reporter.step(f"Secret {_secret(b)} with the backup ({backup.stat().st_size} bytes)")
    b._run(b.kubectl("delete", "secret", _secret(b), "--ignore-not-found"))
    b._run(b.kubectl("create", "secret", "generic", _secret(b), f"--from-file=snapshot={backup}"))
    b.install(
        replicas,
        reporter,
        digest=digest,
        extra_sets=[
            "restore.enabled=true",
            f"restore.secretName={_secret(b)}",
            f"restore.clusterId={cluster_id}",
        ],
    )


def restore_kind(
    b: KindBackend, backup: Path, replicas: int, reporter: Reporter
) -> tuple[BackupInfo, str]:
    """A NEW release seeded from ``backup``; returns (info, the new cluster id)."""
    info = backup_ops.check_file(backup)
    if info.size > SECRET_LIMIT:
        raise UsageError(
            f"{backup} is {info.size} bytes; the kind target passes backups through a Secret "
            f"(at most {SECRET_LIMIT} bytes): seed the volumes by hand (docs/operations.md)"
        )
    require(b.runner, ["kubectl", "helm"], "restore on kind")
    if _pvcs(b):
        raise UsageError(
            f"release {b.s.release} in namespace {b.s.namespace} already has data volumes: "
            "restore creates a NEW cluster; use another --namespace, or remove it first with "
            "`raftctl down --purge --target kind`"
        )
    cluster_id = new_cluster_id()
    _install_restored(b, backup, replicas, cluster_id, reporter)
    return info, cluster_id


def _one_off(
    b: KindBackend, name: str, pvc: str, args: list[str], reporter: Reporter, *, keep: bool = False
) -> str:
    """Run ``raftkv ARGS`` in a pod mounting ``pvc`` at /data; return its log."""
    spec = {
        "apiVersion": "v1",
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": POD_USER, "runAsGroup": POD_USER,
                                "fsGroup": POD_USER, "runAsNonRoot": True},
            "containers": [{
                "name": "raftkv", "image": b.s.ref,
                "command": ["raftkv"] if not keep else ["sh", "-c"],
                "args": args if not keep else [" ".join(["raftkv", *args]) + " && sleep 600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": pvc}}],
        },
    }  # fmt: skip
    reporter.step(f"one-off pod {name}: raftkv {' '.join(args)}")
    b._run(b.kubectl("delete", "pod", name, "--ignore-not-found", "--wait=true"))
    b._run(
        b.kubectl(
            "run",
            name,
            f"--image={b.s.ref}",
            "--restart=Never",
            f"--overrides={json.dumps(spec, separators=(',', ':'))}",
        )
    )
    cond = "--for=condition=Ready" if keep else "--for=jsonpath={.status.phase}=Succeeded"
    waited = b.runner.run(
        b.kubectl("wait", cond, f"pod/{name}", "--timeout=180s"), check=False, timeout=200
    )
    log = b._run(b.kubectl("logs", name))
    if waited.returncode != 0:
        b.runner.run(b.kubectl("delete", "pod", name, "--ignore-not-found"), check=False)
        tail = (log.strip().splitlines() or [waited.stderr.strip() or "no output"])[-1]
        raise RaftctlError(f"one-off pod {name} failed: {tail}")
    if not keep:
        b._run(b.kubectl("delete", "pod", name, "--ignore-not-found"))
    return log.strip()


def _scale(b: KindBackend, n: int, reporter: Reporter) -> None:
    reporter.step(f"scaling StatefulSet {STATEFULSET} to {n}")
    b._run(b.kubectl("scale", f"statefulset/{STATEFULSET}", f"--replicas={n}"))
    if n == 0:
        b.runner.run(
            b.kubectl("wait", "--for=delete", "pod", "-l", b._selector(), "--timeout=180s"),
            check=False,
            timeout=200,
        )
    else:
        b._run(
            b.kubectl("rollout", "status", f"statefulset/{STATEFULSET}", "--timeout=300s"),
            timeout=330,
        )


def recover_kind(
    b: KindBackend, survivor: str, replicas: int, reporter: Reporter
) -> dict[str, object]:
    require(b.runner, ["kubectl", "helm"], "recover on kind")
    pvc = f"data-{survivor}"
    if f"persistentvolumeclaim/{pvc}" not in _pvcs(b):
        raise RaftctlError(f"no PVC {pvc} in namespace {b.s.namespace}: nothing to recover from")
    _scale(b, 0, reporter)
    done: dict[str, object] = {"survivor": survivor}
    if replicas == 1:
        done["recover"] = _one_off(
            b,
            f"{survivor}-recover",
            pvc,
            ["recover", "--data-dir", "/data", "--id", survivor],
            reporter,
        )
        _scale(b, 1, reporter)
        done["replicas"] = [survivor]
        return done
    cluster_id = _cluster_id(b, survivor, pvc, reporter)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    local = default_state_root() / "kind-backups" / f"{b.s.release}-grow-{stamp}.snapshot"
    local.parent.mkdir(parents=True, exist_ok=True)
    pod = f"{survivor}-backup"
    _one_off(
        b,
        pod,
        pvc,
        ["backup", "--data-dir", "/data", "--out", "/tmp/grow.snapshot"],
        reporter,
        keep=True,
    )
    try:
        reporter.step(f"copying the backup out to {local}")
        b._run(b.kubectl("cp", f"{b.s.namespace}/{pod}:/tmp/grow.snapshot", str(local)))
    finally:
        b._run(b.kubectl("delete", "pod", pod, "--ignore-not-found"))
    info = backup_ops.check_file(local)  # verified BEFORE any volume is deleted
    if info.size > SECRET_LIMIT:
        raise UsageError(
            f"the survivor's state is {info.size} bytes, over the {SECRET_LIMIT} "
            f"bytes a Secret holds; saved at {local}; grow by hand "
            "(docs/operations.md)"
        )
    # A rebuild: the release goes (the chart refuses a replicaCount change on a live release),
    # then its volumes; the token Secret stays.
    b.down(False, reporter)
    reporter.step("deleting the release's PersistentVolumeClaims (backup verified and kept)")
    b._run(
        b.kubectl(
            "delete", "pvc", "-l", f"app.kubernetes.io/instance={b.s.release}", "--wait=true"
        ),
        timeout=300,
    )
    _install_restored(b, local, replicas, cluster_id, reporter)
    done.update(
        cluster_id=cluster_id,
        seeded_from=str(local),
        index=info.index,
        keys=info.keys,
        replicas=[f"{STATEFULSET}-{i}" for i in range(replicas)],
    )
    return done


def _cluster_id(b: KindBackend, survivor: str, pvc: str, reporter: Reporter) -> str:
    out = _one_off(b, f"{survivor}-check", pvc, ["check-data", "/data"], reporter)
    for line in out.splitlines():
        if line.startswith("cluster-id: "):
            value = line.split(":", 1)[1].strip()
            if value and " " not in value:
                return value
    raise RaftctlError(f"{survivor}'s data records no cluster id (check-data said: {out[-200:]})")
