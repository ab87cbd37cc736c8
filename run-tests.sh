#!/usr/bin/env bash
# run-tests.sh [PYTEST ARGS...] — create (or reuse) the virtualenv .venv, install the project and its test
# dependencies into it, then run the quality gates from it: ruff check, ruff format --check, mypy (strict) on raftkv/ and
# raftctl/, then pytest (extra arguments go to pytest, e.g. ./run-tests.sh -k test_package).
# Safe to run on a laptop as a normal user (a venv: no root, no PEP 668 refusal) and on CI (root, clean
# clone: there it also apt-get installs what the tiers need — docker.io, debootstrap, wrk, shellcheck —
# and python3-venv when the system Python cannot make a venv).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${RAFTKV_VENV:-.venv}
PY=${PYTHON:-python3}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in docker.io debootstrap wrk shellcheck; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
fi

# The container tier (tests/containers/) needs a running Docker engine. As root (CI) start dockerd when
# none answers — never a second one — and require the tier (a missing engine fails instead of skipping).
# Elsewhere the tier runs if an engine answers, and is skipped with the reason otherwise.
# RAFTKV_SKIP_CONTAINERS=1 skips it everywhere (for machines that cannot run Docker at all).
if [ "${RAFTKV_SKIP_CONTAINERS:-0}" = 1 ]; then
  echo "== docker: RAFTKV_SKIP_CONTAINERS=1: container tests will be SKIPPED"
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "== docker: engine running"
  [ "$(id -u)" = 0 ] && export RAFTKV_REQUIRE_CONTAINERS=1
elif [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1; then
  if [ ! -d /sys/fs/cgroup/memory ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    command -v cgroupfs-mount >/dev/null 2>&1 || \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cgroupfs-mount
    cgroupfs-mount
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then   # no systemd here: start it by hand, it stays up
    echo "== docker: starting dockerd (log: /var/log/raftkv-dockerd.log)"
    nohup dockerd >/var/log/raftkv-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up:"; tail -5 /var/log/raftkv-dockerd.log 2>/dev/null; exit 1; }
  export RAFTKV_REQUIRE_CONTAINERS=1
else
  echo "== docker: no engine reachable (not root, or docker not installed): container tests will be SKIPPED"
fi

# The virtualenv: reused when it works, else (re)created. Debian/Ubuntu ship venv without ensurepip
# unless python3-venv is installed: as root install it, otherwise say so in one line and stop.
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  command -v "$PY" >/dev/null 2>&1 || { echo "run-tests.sh: $PY not found: install Python 3.11+" >&2; exit 1; }
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
      "$PY" -m venv "$VENV"
    else
      echo "run-tests.sh: '$PY -m venv' failed (no ensurepip): install python3-venv" \
           "(sudo apt-get install python3-venv) and run ./run-tests.sh again" >&2
      exit 1
    fi
  fi
  echo "== venv: created $VENV"
fi
# Everything below runs from the venv (also the python3/raftkv/raftctl that tests and scripts start).
VIRTUAL_ENV=$(cd "$VENV" && pwd)
export VIRTUAL_ENV PATH="$VIRTUAL_ENV/bin:$PATH"
python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff check"
python -m ruff check .
echo "== ruff format --check"
python -m ruff format --check .
echo "== mypy"
python -m mypy
echo "== pytest"
python -m pytest "$@"
