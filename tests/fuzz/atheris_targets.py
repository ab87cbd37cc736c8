"""Coverage-guided fuzz targets (atheris / libFuzzer) for the decoders the hypothesis tests cover.

    python3 tests/fuzz/atheris_targets.py TARGET [libFuzzer flags, e.g. -runs=1000000 -max_len=4096]

TARGET: codec | records | segment | snapshot | request_id | http_response | kv_command.
Each target feeds raw bytes to one decoder and fails (a Python exception other than the
decoder's documented error, reported by libFuzzer with the input saved as crash-<sha1>) on any
other outcome. ``tests/fuzz/test_atheris.py`` runs each briefly in CI when atheris is installed;
docs/security.md describes a long run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["raftkv"]):
    from raftkv.errors import InvalidRequestId
    from raftkv.kv.commands import CommandDecodeError, decode_command
    from raftkv.raft import MessageDecodeError, decode_message
    from raftkv.server.httpconn import read_response
    from raftkv.server.requestid import parse_request_id
    from raftkv.storage.errors import StorageCorrupt
    from raftkv.storage.records import RecordError, decode_batch, decode_snap, decode_state
    from raftkv.storage.snapshot import read_snapshot
    from raftkv.storage.wal import encode_segment_header, scan_segment

_TMP = tempfile.mkdtemp(prefix="raftkv-atheris-")


def codec(data: bytes) -> None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return
    with contextlib.suppress(MessageDecodeError):
        decode_message(obj)


def records(data: bytes) -> None:
    for decode in (decode_batch, decode_state, decode_snap):
        with contextlib.suppress(RecordError):
            decode(data)


def segment(data: bytes) -> None:
    path = os.path.join(_TMP, "0000000000000001.wal")
    with open(path, "wb") as f:
        f.write(encode_segment_header(1) + data)
    with contextlib.suppress(StorageCorrupt):
        scan_segment(path, 1, is_last=True)


def snapshot(data: bytes) -> None:
    path = os.path.join(_TMP, "s.snap")
    with open(path, "wb") as f:
        f.write(data)
    with contextlib.suppress(StorageCorrupt):
        read_snapshot(path)


def request_id(data: bytes) -> None:
    with contextlib.suppress(InvalidRequestId):
        parse_request_id(data.decode("latin-1"))


def http_response(data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        read_response(io.BytesIO(data))


def kv_command(data: bytes) -> None:
    with contextlib.suppress(CommandDecodeError):
        decode_command(data)


TARGETS = {
    f.__name__: f
    for f in (codec, records, segment, snapshot, request_id, http_response, kv_command)
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        print(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags]", file=sys.stderr)
        raise SystemExit(2)
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
