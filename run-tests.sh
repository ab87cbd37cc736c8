#!/usr/bin/env bash
# run-tests.sh — install everything the tests need, then run the quality gates:
# ruff check, mypy (strict) on raftkv/ and raftctl/, then pytest.
# Safe to run on a laptop (skips the Debian packages when not root) and on CI (root, clean clone).
set -euo pipefail
cd "$(dirname "$0")"

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

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff check"
python3 -m ruff check .
echo "== mypy"
python3 -m mypy
echo "== pytest"
python3 -m pytest "$@"
