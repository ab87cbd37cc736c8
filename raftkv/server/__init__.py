"""raftkv.server — the node process: driver thread + Flask app, run under gunicorn.

``create_app(config=None)`` is the WSGI factory gunicorn loads
(``gunicorn -c raftkv/gunicorn_conf.py 'raftkv.server:create_app()'``). Without an argument it
reads the configuration from the ``RAFTKV_*`` environment. It builds the node and the app but
starts NO thread: gunicorn's ``post_worker_init`` hook (gunicorn_conf.py) starts the node inside
the one worker process, after the fork. A Raft node is one process: its state (log, term, vote,
waiters) cannot be shared between gunicorn workers, and threads started in the master would not
survive the fork.
"""

from __future__ import annotations

import os
import socket

from flask import Flask

from raftkv.config import NodeConfig, load_config
from raftkv.server.app import EXTENSION_KEY, build_app

__all__ = ["EXTENSION_KEY", "create_app", "node_of"]


def create_app(config: NodeConfig | None = None) -> Flask:
    """Build the node (not started) and its Flask app. A fatal error in the node exits the
    gunicorn worker (``exit_worker``): the one process of a node cannot go on without it."""
    from raftkv.identity import resolve_identity
    from raftkv.server.driver import NodeDriver
    from raftkv.server.gunicorn_app import exit_worker
    from raftkv.server.logs import setup_logging

    if config is None:
        config = load_config({}, os.environ, socket.gethostname())
    setup_logging(config.id, config.log_level)  # again below, with the node's status
    config, cluster_id = resolve_identity(config)  # CLUSTER_ID, forced voters (MEMBERS.json)
    node = NodeDriver(config, cluster_id=cluster_id, on_fatal=exit_worker)
    setup_logging(config.id, config.log_level, node.status)
    return build_app(node)


def node_of(app: object) -> object | None:
    """The node served by a Flask app built here (None for anything else)."""
    if isinstance(app, Flask):
        return app.extensions.get(EXTENSION_KEY)
    return None
