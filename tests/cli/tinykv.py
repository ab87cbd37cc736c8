"""A tiny single-process key/value server speaking raftkv's HTTP API, to prove `raftctl verify`
can fail: ``stale_reads=True`` answers GETs from a cache refreshed only every few writes (a
classic stale-read bug); otherwise it is correct (one dict under one lock: linearizable).
It serves /v1/kv/<key> (GET/PUT with prev_value/DELETE), /v1/status and /v1/admin/hash on a
free loopback port, in a thread, until ``stop()``."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server


class TinyKV:
    def __init__(
        self, node_id: str = "tiny-0", *, stale_reads: bool = False, refresh_every: int = 7
    ) -> None:
        self.id = node_id
        self.data: dict[str, str] = {}
        self.cache: dict[str, str] = {}
        self.applied = 0
        self.lock = threading.Lock()
        self.stale_reads = stale_reads
        self.refresh_every = refresh_every
        self.server: BaseWSGIServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def _write(self) -> None:  # caller holds the lock
        self.applied += 1
        if not self.stale_reads or self.applied % self.refresh_every == 0:
            self.cache = dict(self.data)

    def app(self) -> Flask:
        app = Flask("tinykv")
        headers = {"X-Raft-Leader": self.id, "X-Raft-Term": "1"}

        def answer(body: dict[str, Any], status: int = 200) -> Response:
            resp = jsonify(body)
            resp.status_code = status
            resp.headers.update(headers)
            return resp

        @app.route("/v1/kv/<path:key>", methods=["GET", "PUT", "DELETE"])
        def kv(key: str) -> Response:
            with self.lock:
                if request.method == "GET":
                    value = self.cache.get(key)
                    if value is None:
                        return answer(
                            {"error": f"key not found: {key}", "code": "key_not_found"}, 404
                        )
                    return answer({"key": key, "value": value, "index": self.applied})
                current = self.data.get(key)
                prev = request.args.get("prev_value")
                if prev is not None and current != prev:
                    return answer(
                        {
                            "error": "compare failed",
                            "code": "precondition_failed",
                            "key": key,
                            "value": current,
                        },
                        412,
                    )
                if request.method == "DELETE":
                    if current is None:
                        return answer({"error": "key not found", "code": "key_not_found"}, 404)
                    del self.data[key]
                    self._write()
                    return answer({"key": key, "deleted": True, "index": self.applied})
                self.data[key] = request.get_data(as_text=True)
                self._write()
                return answer({"key": key, "value": self.data[key], "index": self.applied})

        @app.route("/v1/status")
        def status() -> Response:
            with self.lock:
                return answer(
                    {
                        "id": self.id,
                        "role": "leader",
                        "term": 1,
                        "leader": self.id,
                        "commit_index": self.applied,
                        "last_applied": self.applied,
                    }
                )

        @app.route("/v1/admin/hash")
        def admin_hash() -> Response:
            with self.lock:
                h = hashlib.sha256(repr(sorted(self.data.items())).encode()).hexdigest()
                return answer(
                    {
                        "id": self.id,
                        "applied_index": self.applied,
                        "hash": h,
                        "keys": len(self.data),
                    }
                )

        return app

    def start(self) -> TinyKV:
        self.server = make_server("127.0.0.1", 0, self.app(), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
