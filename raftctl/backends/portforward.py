"""portforward.py — reach kind pods through ``kubectl port-forward``, one per pod, on 127.0.0.1.

Why not the API server's pod proxy (``kubectl proxy`` + ``/api/v1/.../pods/<pod>:8000/proxy``):
it cleans the path (``x/../y`` → ``y``, ``a//b`` → ``a/b``) and kubectl proxy's default reject
rule answers 403 to any path containing ``exec`` or ``attach`` — a key would be stored under
another name or refused. A port-forward carries the node's HTTP bytes unchanged, so every key
that works locally works on kind.

Contract:
- ``PortForwards(runner, kubectl_prefix)``: ``url(pod)`` gives the pod a local port, picked free
  on 127.0.0.1 the first time and kept for the life of the object, so a client's URL stays valid
  when a forward is re-established (unless kubectl could not listen on it at the start: then
  another free port is tried).
- ``ensure(pods)`` starts ``kubectl ... port-forward pod/<pod> <port>:8000 --address 127.0.0.1``
  for every listed pod that has no live forward (kubectl exits with "lost connection to pod" when
  the pod's container restarts, so a dead forward is started again, at most every
  ``RESPAWN_S``), all at once, and waits until each printed ``Forwarding from`` or exited.
  The caller leaves out pods that cannot answer (not running, node NotReady or frozen): they
  get no forward (the kind backend gives them a URL that refuses at once instead of hanging).
- ``close()`` stops every kubectl it started (also registered with ``atexit``).
Each kubectl's output is drained by a thread (it prints a line per connection).
"""

from __future__ import annotations

import atexit
import collections
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence

from raftctl.errors import RaftctlError
from raftctl.shell import Process, Runner

__all__ = ["PortForwards", "free_port"]

NODE_PORT = 8000
READY_S = 15.0
RESPAWN_S = 0.5
BIND_TRIES = 3
_READY_TEXT = "Forwarding from"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Forward:
    """One running ``kubectl port-forward`` and what it printed."""

    def __init__(self, pod: str, proc: Process) -> None:
        self.pod = pod
        self.proc = proc
        self.started = time.monotonic()
        self.ready = threading.Event()
        self.eof = threading.Event()
        self.said: collections.deque[str] = collections.deque(maxlen=3)
        threading.Thread(target=self._drain, name=f"port-forward-{pod}", daemon=True).start()

    def _drain(self) -> None:
        stream = self.proc.stdout
        try:
            while stream is not None:
                line = stream.readline()
                if not line:
                    break
                if _READY_TEXT in line:
                    self.ready.set()
                elif not line.startswith("Handling connection"):
                    self.said.append(line.strip())
        except (OSError, ValueError):
            pass
        finally:
            self.eof.set()

    @property
    def could_not_listen(self) -> bool:
        return any(
            "unable to listen" in line.lower() or "address already in use" in line
            for line in self.said
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def settled(self) -> bool:
        # an exited kubectl closes its pipe: wait for EOF so its last words are read
        return self.ready.is_set() or self.eof.is_set()

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class PortForwards:
    """One ``kubectl port-forward`` per pod, started on demand and stopped by ``close``."""

    def __init__(self, runner: Runner, kubectl_prefix: Sequence[str]) -> None:
        self.runner = runner
        self.prefix = list(kubectl_prefix)
        self.ports: dict[str, int] = {}
        self.forwards: dict[str, _Forward] = {}
        self.errors: dict[str, str] = {}
        self._registered = False

    def url(self, pod: str) -> str:
        if pod not in self.ports:
            self.ports[pod] = free_port()
        return f"http://127.0.0.1:{self.ports[pod]}"

    def argv(self, pod: str) -> list[str]:
        return [
            *self.prefix,
            "port-forward",
            f"pod/{pod}",
            f"{self.ports[pod]}:{NODE_PORT}",
            "--address",
            "127.0.0.1",
        ]

    def ensure(self, pods: Iterable[str]) -> None:
        """Have a live forward for each pod (started in parallel); raise if none comes up.

        A forward that could not listen (its port was taken since it was picked) gets a new
        port and is tried again, up to ``BIND_TRIES`` times; call ``url`` after ``ensure``.
        """
        fresh = self._start([p for p in pods if self._needs_start(p)])
        for _ in range(BIND_TRIES - 1):
            self._settle(fresh)
            taken = [f.pod for f in fresh if not f.ready.is_set() and f.could_not_listen]
            if not taken:
                break
            for pod in taken:
                self.ports.pop(pod, None)  # picked free, but something took it meanwhile
            fresh = [f for f in fresh if f.pod not in taken] + self._start(taken)
        self._settle(fresh)
        for fwd in fresh:
            if fwd.ready.is_set():
                self.errors.pop(fwd.pod, None)
                continue
            why = (
                fwd.said[-1]
                if fwd.said
                else ("kubectl exited" if not fwd.alive else f"no answer within {READY_S:.0f}s")
            )
            self.errors[fwd.pod] = why
            fwd.stop()
        if fresh and not any(f.alive and f.ready.is_set() for f in self.forwards.values()):
            first = fresh[0]
            raise RaftctlError(
                f"`kubectl port-forward` to {first.pod} failed: {self.errors[first.pod]}"
            )

    def _needs_start(self, pod: str) -> bool:
        current = self.forwards.get(pod)
        if current is None:
            return True
        if current.alive:
            return False
        # it just died: do not spin kubectl while a container restarts
        return time.monotonic() - current.started >= RESPAWN_S

    def _start(self, pods: Sequence[str]) -> list[_Forward]:
        if pods and not self._registered:
            atexit.register(self.close)  # never leave kubectl running after raftctl exits
            self._registered = True
        out = []
        for pod in pods:
            self.url(pod)
            fwd = _Forward(pod, self.runner.spawn(self.argv(pod)))
            self.forwards[pod] = fwd
            out.append(fwd)
        return out

    @staticmethod
    def _settle(fresh: Sequence[_Forward]) -> None:
        deadline = time.monotonic() + READY_S
        while any(not f.settled for f in fresh) and time.monotonic() < deadline:
            time.sleep(0.02)
        for fwd in fresh:
            if not fwd.ready.is_set() and not fwd.alive:
                fwd.eof.wait(0.5)  # a dead kubectl's last words may still be in the pipe

    def close(self) -> None:
        for fwd in self.forwards.values():
            fwd.stop()
        self.forwards.clear()
