#!/usr/bin/env bash
# run-tests.sh — install everything the tests need, then run the quality gates:
# ruff check, mypy (strict) on raftkv/ and raftctl/, then pytest.
# Safe to run on a laptop (skips the Debian packages when not root) and on CI (root, clean clone).
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in docker.io debootstrap wrk; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff check"
python3 -m ruff check .
echo "== mypy"
python3 -m mypy
echo "== pytest"
python3 -m pytest "$@"
