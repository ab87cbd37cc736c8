"""snapshot_stream.py — InstallSnapshot in chunks: the leader streams its snapshot FILE to a
follower with flow control and resume; the follower assembles it on disk.

Why not a Raft message: a snapshot of a million keys is ~130 MB; as one JSON message it would
sit in memory (base64) on both sides and be re-sent whole after every timeout. Instead (like
etcd's snapshot stream) the core's ``InstallSnapshot`` carries only the snapshot's meta (its data
is empty, docs/storage.md), the driver hands it to ``SnapshotSender``, and:

- Leader (``SnapshotSender``, one thread per follower in transfer): reads the snapshot file
  ``chunk_bytes`` at a time and POSTs each chunk to ``POST /raft/v1/snapshot`` with headers
  ``X-Raftkv-From`` (leader id), ``X-Raftkv-Term`` (leader term), ``X-Raftkv-Snapshot-Index``,
  ``-Term``, ``-Offset`` (of this chunk in the file) and ``-Size`` (of the file). Stop-and-wait:
  the next chunk goes once the follower acknowledged this one, so at most one chunk is in memory
  or in flight per follower (flow control) and a slow follower slows only its own stream.
  The answer ``{"received": n, "complete": bool}`` says how many bytes the follower holds; a
  ``409`` with ``received`` (offset mismatch: a lost answer, a restarted sender) makes the
  sender resume from there. Network errors are retried with back-off (the transfer resumes from
  the follower's ``received``); after ``give_up_s`` of failures it is dropped (the core asks
  again). A newer snapshot for the same follower replaces a transfer in progress; the same one
  asked for again (the core retries every election timeout) is ignored while under way.
- Follower (``SnapshotReceiver``): writes the chunks into ``snap/<index>-<term>.snap.recv.tmp``
  (``FileAssembler``: in-order offsets, the header fixes the size); a chunk of another snapshot
  at offset 0 starts over. When complete the file is fsynced and verified (checksums), and an
  ``InstallSnapshot`` (meta only) from the leader is delivered to the driver, which adopts the
  file (``Storage.adopt_snapshot_file``) and restores the state machine from it, streaming.
  The core decides as for any InstallSnapshot (a stale term is ignored; a delivered file is
  kept until the driver adopts it or the node restarts, when ``*.tmp`` files are removed).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raftkv.errors import BadRequest, PayloadTooLarge, RaftkvError
from raftkv.raft.messages import InstallSnapshot
from raftkv.raft.types import Snapshot, SnapshotMeta
from raftkv.server.httpconn import KeepAliveConnection
from raftkv.storage.snapshot import (
    RECV_TMP_SUFFIX,
    FileAssembler,
    SnapshotStreamError,
    snapshot_name,
)

__all__ = ["SNAPSHOT_PATH", "ChunkRejected", "SnapshotReceiver", "SnapshotSender"]

log = logging.getLogger(__name__)

SNAPSHOT_PATH = "/raft/v1/snapshot"
MAX_CHUNK_BYTES = 64 << 20


class ChunkRejected(RaftkvError):
    """The chunk does not start where the follower's copy ends (409, with ``received``)."""

    status = 409
    code = "snapshot_offset_mismatch"

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received

    def payload(self) -> dict[str, Any]:
        out = super().payload()
        out["received"] = self.received
        return out


# ---------------------------------------------------------------------- leader side


@dataclass
class _Transfer:
    meta: SnapshotMeta
    path: str
    term: int
    cancel: threading.Event
    thread: threading.Thread | None = None


class SnapshotSender:
    """Streams snapshot files to followers (see module docstring)."""

    def __init__(
        self,
        self_id: str,
        url_of: Callable[[str], str | None],
        *,
        token: str | None = None,
        chunk_bytes: int = 1 << 20,
        timeout: float = 10.0,
        give_up_s: float = 30.0,
        extra_headers: Callable[[], dict[str, str]] | None = None,
        on_done: Callable[[str, SnapshotMeta, bool, float], None] | None = None,
        ssl_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self._ssl_context = ssl_context  # https:// peers: the node's client TLS context (tls.py)
        self.self_id = self_id
        self._url_of = url_of
        self._token = token
        self.chunk_bytes = chunk_bytes
        self._timeout = timeout
        self._give_up_s = give_up_s
        self._extra_headers = extra_headers
        self._on_done = on_done
        self._mu = threading.Lock()
        self._transfers: dict[str, _Transfer] = {}
        self._stopped = False

    def active(self) -> dict[str, int]:
        """Follower -> index of the snapshot being streamed to it."""
        with self._mu:
            return {p: t.meta.index for p, t in self._transfers.items()}

    def send(self, peer: str, meta: SnapshotMeta, path: str, term: int) -> None:
        """Stream the snapshot file ``path`` (of ``meta``) to ``peer`` unless already doing so."""
        with self._mu:
            if self._stopped:
                return
            cur = self._transfers.get(peer)
            if cur is not None:
                if (cur.meta.index, cur.meta.term) == (meta.index, meta.term):
                    cur.term = term
                    return
                cur.cancel.set()
            t = _Transfer(meta=meta, path=path, term=term, cancel=threading.Event())
            t.thread = threading.Thread(
                target=self._run, args=(peer, t), name=f"raftkv-snap-{peer}", daemon=True
            )
            self._transfers[peer] = t
            t.thread.start()

    def stop(self) -> None:
        with self._mu:
            self._stopped = True
            transfers = list(self._transfers.values())
        for t in transfers:
            t.cancel.set()
        for t in transfers:
            if t.thread is not None:
                t.thread.join(2.0)

    def _run(self, peer: str, t: _Transfer) -> None:
        started = time.monotonic()
        ok = False
        try:
            ok = self._stream(peer, t)
        except Exception as err:  # never kill the process over one transfer
            log.warning(
                "peer=%s event=snapshot-send-error index=%d error=%s: %s",
                peer,
                t.meta.index,
                type(err).__name__,
                err,
            )
        finally:
            with self._mu:
                if self._transfers.get(peer) is t:
                    del self._transfers[peer]
            if self._on_done is not None and not t.cancel.is_set():
                self._on_done(peer, t.meta, ok, time.monotonic() - started)

    def _stream(self, peer: str, t: _Transfer) -> bool:
        url = self._url_of(peer)
        if url is None:
            log.warning("peer=%s event=snapshot-send-skipped reason=no-url", peer)
            return False
        conn = KeepAliveConnection.for_url(url, self._timeout, ssl_context=self._ssl_context)
        try:
            f = open(t.path, "rb")  # noqa: SIM115 - closed below; kept open if the file is pruned
        except FileNotFoundError:
            log.warning(
                "peer=%s event=snapshot-send-skipped reason=file-gone path=%s", peer, t.path
            )
            return False
        size = os.fstat(f.fileno()).st_size
        log.info(
            "peer=%s event=snapshot-send-start index=%d term=%d bytes=%d chunk=%d",
            peer,
            t.meta.index,
            t.meta.term,
            size,
            self.chunk_bytes,
        )
        offset = 0
        failing_since: float | None = None
        backoff = 0.05
        chunks = 0
        try:
            while not t.cancel.is_set():
                f.seek(offset)
                chunk = f.read(min(self.chunk_bytes, size - offset))
                headers = {
                    "Content-Type": "application/octet-stream",
                    "X-Raftkv-From": self.self_id,
                    "X-Raftkv-Term": str(t.term),
                    "X-Raftkv-Snapshot-Index": str(t.meta.index),
                    "X-Raftkv-Snapshot-Term": str(t.meta.term),
                    "X-Raftkv-Snapshot-Offset": str(offset),
                    "X-Raftkv-Snapshot-Size": str(size),
                }
                if self._token:
                    headers["Authorization"] = f"Bearer {self._token}"
                if self._extra_headers is not None:
                    headers.update(self._extra_headers())
                try:
                    status, _, body = conn.request(
                        "POST", SNAPSHOT_PATH, chunk, headers, self._timeout
                    )
                    answer = json.loads(body) if body else {}
                    received = int(answer.get("received", -1))
                except (OSError, ValueError, TypeError, AttributeError) as err:
                    conn.close()
                    status, answer, received = 0, {"error": str(err)}, -1
                if status == 200 or (status == 409 and 0 <= received <= size):
                    failing_since, backoff = None, 0.05
                    chunks += status == 200
                    if answer.get("complete"):
                        log.info(
                            "peer=%s event=snapshot-sent index=%d bytes=%d chunks=%d",
                            peer,
                            t.meta.index,
                            size,
                            chunks,
                        )
                        return True
                    if status == 409:
                        log.info(
                            "peer=%s event=snapshot-send-resume index=%d offset=%d",
                            peer,
                            t.meta.index,
                            received,
                        )
                    offset = received
                    continue
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > self._give_up_s:
                    log.warning(
                        "peer=%s event=snapshot-send-gave-up index=%d status=%d error=%s",
                        peer,
                        t.meta.index,
                        status,
                        str(answer.get("error", ""))[:200],
                    )
                    return False
                t.cancel.wait(backoff)
                backoff = min(1.0, backoff * 2)
                # resume where the follower stands: ask with a chunk at our offset (409 tells)
            return False
        finally:
            f.close()
            conn.close()


# ---------------------------------------------------------------------- follower side


class SnapshotReceiver:
    """Assembles streamed snapshot files and hands complete ones to the driver."""

    def __init__(
        self,
        self_id: str,
        snap_dir: Callable[[], str | None],
        deliver: Callable[[InstallSnapshot], None],
    ) -> None:
        self.self_id = self_id
        self._snap_dir = snap_dir
        self._deliver = deliver
        self._mu = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._asm: FileAssembler | None = None
        self._delivered: set[str] = set()  # complete files handed to the driver, not yet adopted

    def chunk(self, headers: Any, body: bytes) -> dict[str, Any]:
        """Handle one chunk (``headers``: a mapping with the X-Raftkv-* headers)."""
        try:
            src = str(headers["X-Raftkv-From"])
            term = int(headers["X-Raftkv-Term"])
            index = int(headers["X-Raftkv-Snapshot-Index"])
            sterm = int(headers["X-Raftkv-Snapshot-Term"])
            offset = int(headers["X-Raftkv-Snapshot-Offset"])
            size = int(headers["X-Raftkv-Snapshot-Size"])
        except (KeyError, TypeError, ValueError) as err:
            raise BadRequest(f"snapshot chunk needs integer X-Raftkv-* headers: {err}") from None
        if min(term, index, sterm) < 1 or offset < 0 or size < 1 or not src:
            raise BadRequest("snapshot chunk headers out of range")
        if len(body) > MAX_CHUNK_BYTES:
            raise PayloadTooLarge(f"snapshot chunk of {len(body)} bytes is too large")
        snap_dir = self._snap_dir()
        if snap_dir is None:
            raise BadRequest("node is not started")
        with self._mu:
            if self._key != (index, sterm) or self._asm is None:
                if offset != 0:
                    raise ChunkRejected(
                        f"no transfer of snapshot {index}/{sterm} under way; start at 0", 0
                    )
                self._start(snap_dir, index, sterm)
            asm = self._asm
            assert asm is not None
            try:
                asm.write(offset, body)
            except SnapshotStreamError as err:
                if offset != asm.received:
                    raise ChunkRejected(str(err), asm.received) from None
                self._drop()
                raise BadRequest(f"bad snapshot stream: {err}") from None
            if asm.expected is not None and asm.expected != size:
                self._drop()
                raise BadRequest(f"snapshot header declares {asm.expected} bytes, sender {size}")
            if not asm.complete:
                return {"received": asm.received, "complete": False}
            try:
                layout = asm.finish()
            except SnapshotStreamError as err:
                self._drop()
                raise BadRequest(f"bad snapshot stream: {err}") from None
            asm.close()
            self._asm, self._key = None, None
            self._delivered = {p for p in self._delivered if os.path.exists(p)} | {asm.path}
            if (layout.meta.index, layout.meta.term) != (index, sterm):
                os.unlink(asm.path)
                raise BadRequest("snapshot header does not match its X-Raftkv-Snapshot-* headers")
        log.info(
            "event=snapshot-received index=%d term=%d bytes=%d from=%s",
            index,
            sterm,
            layout.size,
            src,
        )
        self._deliver(
            InstallSnapshot(
                src=src, dst=self.self_id, term=term, snapshot=Snapshot(meta=layout.meta, data=b"")
            )
        )
        return {"received": layout.size, "complete": True}

    def _start(self, snap_dir: str, index: int, sterm: int) -> None:
        self._drop()
        for name in os.listdir(snap_dir):  # leftovers of abandoned transfers
            path = os.path.join(snap_dir, name)
            if name.endswith(RECV_TMP_SUFFIX) and path not in self._delivered:
                os.unlink(path)
        path = os.path.join(snap_dir, snapshot_name(index, sterm) + RECV_TMP_SUFFIX)
        self._asm = FileAssembler(path)
        self._key = (index, sterm)

    def _drop(self) -> None:
        if self._asm is not None:
            self._asm.discard()
        self._asm, self._key = None, None


def staged_path(snap_dir: str, meta: SnapshotMeta) -> str:
    """Where ``SnapshotReceiver`` leaves a complete snapshot for the driver to adopt."""
    return os.path.join(snap_dir, snapshot_name(meta.index, meta.term) + RECV_TMP_SUFFIX)
