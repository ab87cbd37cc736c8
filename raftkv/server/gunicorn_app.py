"""gunicorn_app.py — runs a node under gunicorn: settings, worker hooks, and the embedded app.

Why exactly ONE worker, threaded (gthread): a Raft node's state — its log, term, vote, the KV
machine and the requests waiting for their entries to commit — lives in one process. Two workers
would be two nodes answering on the same port with one identity. Threads give concurrency
(requests block while their entry commits) inside that one process.

Why the driver starts in ``post_worker_init`` (after the fork, inside the worker) and never in the
master: threads do not survive ``fork()``, and the master must stay a plain supervisor (it restarts
a dead worker and relays signals). ``create_app()`` therefore builds the node without starting it.

Shutdown: SIGTERM reaches the master, which forwards it to the worker. The worker's handler (wrapped
in ``post_worker_init``) first tells the node to stop taking writes and to hand leadership to the
most up-to-date follower, then lets gunicorn drain in-flight requests (``graceful_timeout``);
``worker_exit`` waits (bounded) for the transfer and closes the storage. All of it fits well
inside Kubernetes' default 30 s grace period.

A fatal node error (storage failure) exits the worker with gunicorn's WORKER_BOOT_ERROR code, so
the master halts with a non-zero status instead of respawning a node in a loop.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from raftkv.config import NodeConfig

__all__ = [
    "FATAL_EXIT_CODE",
    "NodeApplication",
    "exit_worker",
    "post_worker_init",
    "settings",
    "worker_exit",
    "worker_int",
]

log = logging.getLogger("raftkv.server.gunicorn")

_PR_SET_PDEATHSIG = 1
SWITCH_INTERVAL_S = 0.005
GC_THRESHOLDS = (50_000, 20, 100)
FATAL_EXIT_CODE = 3  # gunicorn's WORKER_BOOT_ERROR: the master halts instead of respawning


def settings(config: NodeConfig) -> dict[str, Any]:
    """The gunicorn settings for a node (shared by ``raftkv serve`` and ``-c`` usage)."""
    host = config.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {
        "bind": [f"{host}:{config.port}"],
        "workers": 1,
        "worker_class": "raftkv.server.worker.RaftkvWorker",  # gthread, hardened
        "threads": config.threads,
        "worker_connections": 1000,
        "keepalive": 75,
        # The master kills a worker silent this long; the worker is silent while it waits for the
        # data dir's lock in post_worker_init (up to lock_timeout_s), so allow that on top.
        "timeout": 60 + config.lock_timeout_s,
        "graceful_timeout": 15,
        "preload_app": False,
        "accesslog": None,
        # gunicorn >= 24 opens a control socket at one fixed per-user path; several nodes on
        # one machine would fight over it, and a node needs none.
        "control_socket_disable": True,
        **_tls_settings(config),
    }


def _tls_settings(config: NodeConfig) -> dict[str, Any]:
    """HTTPS: certfile/keyfile make gunicorn wrap every connection; its ``ssl_context`` hook
    (called per connection) hands out tls.py's context, reloaded when the files change."""
    if not config.tls:
        return {}
    from raftkv.server.tls import server_context

    reloading = server_context(config)

    def ssl_context(conf: Any, default_factory: Any) -> Any:
        return reloading.get()

    return {"certfile": config.tls_cert, "keyfile": config.tls_key, "ssl_context": ssl_context}


def _die_with_master(worker: Any) -> None:
    """SIGKILL of the master must crash the node, not leave a headless worker behind that would
    hand over leadership as if it were shut down: the kernel kills the worker with its parent."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no libc prctl: gunicorn's own ppid check remains
            pass
    if os.getppid() != getattr(worker, "ppid", os.getppid()):
        os._exit(FATAL_EXIT_CODE)  # the master died before the line above took effect


def exit_worker(err: BaseException) -> None:
    """The node's ``on_fatal`` (create_app injects it): flush the logs and exit the worker with
    FATAL_EXIT_CODE, so the master stops and the supervisor restarts the node from its disk."""
    logging.shutdown()
    os._exit(FATAL_EXIT_CODE)


def _node(worker: Any) -> Any:
    from raftkv.server import node_of

    return node_of(getattr(worker, "wsgi", None))


def post_worker_init(worker: Any) -> None:
    """Start the node inside the worker, and make SIGTERM begin a graceful handover."""
    node = _node(worker)
    if node is None:
        return
    _die_with_master(worker)
    # GIL switch interval: CPython's default 5 ms. A shorter one (0.5 ms, tried so the driver
    # gets the GIL back sooner after each fsync/network wait) makes ~64 request threads, the
    # driver and the senders hand the GIL around ten times as often: measured at 64
    # connections, writes 0.43 -> 0.58 x the ceiling and ReadIndex reads 0.49 -> 0.71 x with
    # 5 ms, p99 write latency at 16 connections 32 ms. RAFTKV_SWITCH_INTERVAL_S overrides.
    sys.setswitchinterval(float(os.environ.get("RAFTKV_SWITCH_INTERVAL_S", SWITCH_INTERVAL_S)))
    # A node holds many long-lived objects (the KV data, the in-memory Raft log): with CPython's
    # default thresholds the cyclic GC re-scans them so often that it cost ~30% of a PUT in a
    # profile with 50k keys. Collect young objects less often; freeze what start-up created.
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        node.start()
    except Exception as err:
        log.critical("event=start-failed error=%s: %s", type(err).__name__, err)
        sys.stderr.flush()
        raise SystemExit(FATAL_EXIT_CODE) from None
    gc.freeze()  # the app, the recovered log and KV data: never garbage, never re-scanned

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        log.info("event=sigterm action=drain")
        node.begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_exit(server: Any, worker: Any) -> None:
    node = _node(worker)
    if node is not None and node.started:
        node.stop(timeout=5.0)


def worker_int(worker: Any) -> None:
    node = _node(worker)
    if node is not None and node.started:
        node.stop(timeout=2.0)


class NodeApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn embedded through its application API: ``NodeApplication(config).run()``."""

    def __init__(self, config: NodeConfig) -> None:
        self.node_config = config
        super().__init__()

    def load_config(self) -> None:
        for key, value in settings(self.node_config).items():
            if key in self.cfg.settings:  # control_socket_disable needs gunicorn >= 25.1
                self.cfg.set(key, value)
        self.cfg.set("post_worker_init", post_worker_init)
        self.cfg.set("worker_exit", worker_exit)
        self.cfg.set("worker_int", worker_int)
        self.cfg.set("proc_name", f"raftkv-{self.node_config.id}")

    def load(self) -> Any:
        from raftkv.server import create_app

        return create_app(self.node_config)
