"""errors.py — raftctl's one exception tree.

Every failure a user can cause or meet is a ``RaftctlError``; the command layer turns it into ONE
line on stderr and the exception's exit code (1 runtime error, 2 usage error, 3 unknown outcome
of a write). Anything else that escapes is a bug.

    RaftctlError (exit 1)
     ├── UsageError (exit 2)              bad flags/arguments the parser could not catch
     ├── ToolMissing                      docker/kind/kubectl/helm not on PATH (names the tool)
     ├── CommandFailed                    an external command failed (shows its stderr tail)
     ├── ClusterNotRunning                no cluster state / nothing to talk to
     ├── UnknownReplica                   a replica id that is not in the cluster
     └── NodeError                        a raftkv node answered with an error or not at all
          ├── KeyNotFound                 404 on a key
          ├── CompareFailed               412 on a compare-and-set (carries the current value)
          ├── Unavailable                 no replica reachable / no leader before the deadline
          └── OutcomeUnknown (exit 3)     a write may or may not be applied (504 from the node)
"""

from __future__ import annotations

__all__ = [
    "ClusterNotRunning",
    "CommandFailed",
    "CompareFailed",
    "KeyNotFound",
    "NodeError",
    "OutcomeUnknown",
    "RaftctlError",
    "ToolMissing",
    "Unavailable",
    "UnknownReplica",
    "UsageError",
]

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_UNKNOWN_OUTCOME = 3


class RaftctlError(Exception):
    """A failure reported to the user as one line plus an exit code."""

    exit_code: int = EXIT_RUNTIME

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(RaftctlError):
    """The command line asks for something impossible (exit 2)."""

    exit_code = EXIT_USAGE


class ToolMissing(RaftctlError):
    """An external program raftctl needs is not installed."""

    def __init__(self, tool: str, why: str = "") -> None:
        hint = f" (needed to {why})" if why else ""
        super().__init__(f"{tool} not found on PATH{hint}: install {tool} and try again")
        self.tool = tool


class CommandFailed(RaftctlError):
    """An external command exited with a non-zero status."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        tail = " ".join(stderr.strip().splitlines()[-2:]) if stderr.strip() else "no output"
        super().__init__(f"`{' '.join(argv)}` failed (exit {returncode}): {tail}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class ClusterNotRunning(RaftctlError):
    """There is no cluster to talk to."""


class UnknownReplica(RaftctlError):
    """A replica id that the cluster does not have."""


class NodeError(RaftctlError):
    """A raftkv node answered with an error (or could not be reached)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reply: object | None = None  # the client's Reply, when there was one


class KeyNotFound(NodeError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}", status=404)
        self.key = key


class CompareFailed(NodeError):
    """A compare-and-set found another value (or no value)."""

    def __init__(self, key: str, current: str | None) -> None:
        shown = "absent" if current is None else repr(current)
        super().__init__(f"compare-and-set failed on {key}: current value is {shown}", status=412)
        self.key = key
        self.current = current


class Unavailable(NodeError):
    """No replica could serve the request before the deadline."""


class OutcomeUnknown(NodeError):
    """A write may or may not have been applied (the node answered 504: ``outcome_unknown`` or
    ``commit_timeout``) and retries with the same request id did not settle it in time."""

    exit_code = EXIT_UNKNOWN_OUTCOME

    def __init__(self, message: str) -> None:
        super().__init__(f"unknown outcome: {message}", status=504)
