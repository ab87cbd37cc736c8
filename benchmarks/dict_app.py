"""dict_app.py — the HTTP-stack ceiling for bench_node.py: Flask + a process-local dict.

Same URL shape and JSON answers as raftkv's KV API, no replication, no disk, served by gunicorn
with the SAME settings as a raftkv node (1 gthread worker, same thread count):

    gunicorn -w 1 -k gthread --threads 96 -b 127.0.0.1:18000 'benchmarks.dict_app:create_app()'
"""

from __future__ import annotations

import json
import threading

from flask import Flask, Response, request


def create_app() -> Flask:
    app = Flask("dict_app")
    data: dict[str, tuple[str, int]] = {}
    lock = threading.Lock()
    counter = [0]

    def js(obj: object, status: int = 200) -> Response:
        return Response(
            json.dumps(obj, separators=(",", ":")), status=status, mimetype="application/json"
        )

    @app.route("/v1/kv/<path:key>", methods=["PUT"])
    def put(key: str) -> Response:
        value = request.get_data().decode("utf-8")
        with lock:
            counter[0] += 1
            data[key] = (value, counter[0])
            index = counter[0]
        return js({"key": key, "value": value, "index": index, "term": 1, "leader": "dict"})

    @app.route("/v1/kv/<path:key>", methods=["GET"])
    def get(key: str) -> Response:
        found = data.get(key)
        if found is None:
            return js({"error": "key not found"}, 404)
        return js({"key": key, "value": found[0], "index": found[1]})

    @app.route("/healthz")
    def healthz() -> Response:
        return js({"ok": True})

    return app
