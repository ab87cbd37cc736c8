"""gunicorn_conf.py — ``gunicorn -c raftkv/server/gunicorn_conf.py 'raftkv.server:create_app()'``.

Settings come from the ``RAFTKV_*`` environment (the same validation as ``raftkv serve``; a bad
value prints one line and exits 2). The settings and the hooks are those of gunicorn_app.py, whose
docstring explains why a node runs exactly ONE gthread worker and starts its driver thread in
``post_worker_init`` (inside the worker, after the fork), never in the master.
``raftkv/gunicorn_conf.py`` re-exports this module.
"""

from __future__ import annotations

import os
import socket
import sys

from raftkv.config import NodeConfig, load_config
from raftkv.errors import ConfigError
from raftkv.server.gunicorn_app import post_worker_init, settings, worker_exit, worker_int

__all__ = [
    "accesslog",
    "bind",
    "control_socket_disable",
    "graceful_timeout",
    "keepalive",
    "post_worker_init",
    "preload_app",
    "proc_name",
    "threads",
    "timeout",
    "worker_class",
    "worker_connections",
    "worker_exit",
    "worker_int",
    "workers",
]


def _env_config() -> NodeConfig:
    try:
        return load_config({}, os.environ, socket.gethostname())
    except ConfigError as err:
        print(f"raftkv: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


_CONFIG = _env_config()
_S = settings(_CONFIG)
bind = _S["bind"]
workers = _S["workers"]
worker_class = _S["worker_class"]
threads = _S["threads"]
worker_connections = _S["worker_connections"]
keepalive = _S["keepalive"]
timeout = _S["timeout"]
graceful_timeout = _S["graceful_timeout"]
preload_app = _S["preload_app"]
accesslog = _S["accesslog"]
control_socket_disable = _S["control_socket_disable"]
proc_name = f"raftkv-{_CONFIG.id}"
if _CONFIG.tls:  # HTTPS (tls.py): the files, and the hook handing out the reloading context
    certfile = _S["certfile"]
    keyfile = _S["keyfile"]
    ssl_context = _S["ssl_context"]
    __all__ += ["certfile", "keyfile", "ssl_context"]
