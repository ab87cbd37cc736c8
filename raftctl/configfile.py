"""configfile.py — raftctl's optional config file with named contexts (as kubectl and etcdctl).

Contract: the file is ``$RAFTCTL_CONFIG`` if set, else ``$XDG_CONFIG_HOME/raftctl/config.yaml``
(``~/.config/raftctl/config.yaml`` without XDG_CONFIG_HOME); it is optional. Its shape::

    current-context: prod            # optional: the context used when none is selected
    contexts:
      prod:
        target: kind                 # local | kind
        name: raftkv                 # cluster name (kind: the Helm release)
        namespace: kv
        token: s3cret                # cluster token
        cacert: /etc/raftkv/ca.pem   # CA bundle for https:// endpoints
      lab:
        endpoints: [http://10.0.0.5:8000, http://10.0.0.6:8000]   # or "url,url"

A context is selected by ``--context`` or ``RAFTCTL_CONTEXT``, else ``current-context``. Its values
sit between the environment and the defaults: command-line flags > ``RAFTCTL_*`` env vars >
context > defaults. Anything malformed (bad YAML, unknown field, wrong type, unknown context)
raises ``ConfigError`` whose message is one line naming the file. ``use_context`` rewrites the file
atomically (tmp file, fsync, rename) keeping every context.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raftctl.errors import RaftctlError

__all__ = ["FIELDS", "Config", "ConfigError", "config_path", "load_config", "use_context"]

FIELDS = ("target", "name", "namespace", "endpoints", "token", "cacert")
TARGETS = ("local", "kind")


class ConfigError(RaftctlError):
    """The config file (or the context asked for) is unusable; one line, exit 1."""


def config_path(env: dict[str, str] | os._Environ[str] | None = None) -> Path:
    env = os.environ if env is None else env
    explicit = env.get("RAFTCTL_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "raftctl" / "config.yaml"


@dataclass
class Config:
    """The parsed file: contexts by name (each a dict of FIELDS, endpoints as a comma string)."""

    path: Path
    current: str | None = None
    contexts: dict[str, dict[str, str]] = field(default_factory=dict)
    exists: bool = False

    def context(self, name: str | None) -> tuple[str | None, dict[str, str]]:
        """(name, values) of the context ``name`` (None: current-context, or none at all)."""
        chosen = name or self.current
        if chosen is None:
            return None, {}
        if chosen not in self.contexts:
            known = ", ".join(sorted(self.contexts)) or "none defined"
            where = "" if self.exists else " (the file does not exist)"
            raise ConfigError(
                f"{self.path}: no context named {chosen!r}{where} (contexts: {known})"
            )
        return chosen, self.contexts[chosen]


def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: {what}")


def _context_values(path: Path, name: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, f"context {name!r} must be a mapping of {', '.join(FIELDS)}")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key not in FIELDS:
            raise _fail(
                path, f"context {name!r}: unknown field {key!r} (fields: {', '.join(FIELDS)})"
            )
        if value is None:
            continue
        if key == "endpoints":
            if isinstance(value, str):
                urls = [u.strip() for u in value.split(",") if u.strip()]
            elif isinstance(value, list) and all(isinstance(u, str) for u in value):
                urls = [u.strip() for u in value if u.strip()]
            else:
                raise _fail(
                    path,
                    f"context {name!r}: endpoints must be a list of URLs "
                    "or a comma-separated string",
                )
            if not urls:
                raise _fail(path, f"context {name!r}: endpoints is empty")
            out[key] = ",".join(urls)
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _fail(path, f"context {name!r}: {key} must be a string")
        text = str(value)
        if key == "target" and text not in TARGETS:
            raise _fail(path, f"context {name!r}: target must be local or kind, got {text!r}")
        if key == "cacert":
            text = str(Path(text).expanduser())
        out[key] = text
    return out


def load_config(path: Path | None = None) -> Config:
    """Parse the config file; a missing file is an empty config."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path)
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(path, f"cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise _fail(path, f"bad YAML{where}: {problem}") from None
    if doc is None:
        return Config(path, exists=True)
    if not isinstance(doc, dict):
        raise _fail(path, "must be a mapping with `contexts:` (and optionally `current-context:`)")
    unknown = set(doc) - {"contexts", "current-context"}
    if unknown:
        raise _fail(
            path,
            f"unknown top-level key(s) {', '.join(sorted(map(str, unknown)))} "
            "(expected contexts, current-context)",
        )
    raw_contexts = doc.get("contexts") or {}
    if not isinstance(raw_contexts, dict):
        raise _fail(path, "contexts must be a mapping of context name -> fields")
    contexts = {str(n): _context_values(path, str(n), v) for n, v in raw_contexts.items()}
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise _fail(path, "current-context must be a context name")
    if current is not None and current not in contexts:
        raise _fail(
            path,
            f"current-context {current!r} is not one of the contexts "
            f"({', '.join(sorted(contexts)) or 'none defined'})",
        )
    return Config(path, current, contexts, exists=True)


def use_context(name: str, path: Path | None = None) -> Config:
    """Make ``name`` the current context (the file keeps everything else as it was parsed)."""
    config = load_config(path)
    config.context(name)  # raises if unknown
    raw: dict[str, Any] = yaml.safe_load(config.path.read_text(encoding="utf-8")) or {}
    raw["current-context"] = name
    text = yaml.safe_dump(raw, sort_keys=False, default_flow_style=False)
    directory = config.path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, config.path.stat().st_mode & 0o777)
            os.replace(tmp, config.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise _fail(config.path, f"cannot write: {err.strerror or err}") from None
    config.current = name
    return config
