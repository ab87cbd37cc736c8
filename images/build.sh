#!/usr/bin/env bash
# images/build.sh TAG — build the one raftkv image (node + client) with the local Docker engine, offline.
#
#   1. the base image (BASE, default local/python:3.11-bookworm) is built by images/base/mkbase.sh when it is
#      missing (debootstrap: needs root and the Debian mirror; no registry is ever pulled from); any other
#      slim Python 3.11 base (BASE=python:3.11-slim) is pulled by docker build where registries are reachable;
#   2. the project's wheel is built on the host, and the wheels of its dependencies are downloaded on the host
#      for CPython 3.11 / manylinux (pip download), into a throwaway build context;
#   3. `docker build --network none` installs them into a venv (multi-stage: no pip, no wheels in the result),
#      and the image's size is printed.
# Env: DOCKER (docker CLI, default `docker`), BASE (base image), PYTHON (host python, default python3).
set -euo pipefail

usage() { echo "usage: images/build.sh TAG   (e.g. images/build.sh localhost:5001/raftkv:dev)" >&2; exit 2; }
if [ $# -ne 1 ] || [ -z "$1" ]; then usage; fi
TAG=$1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DOCKER=${DOCKER:-docker}
BASE=${BASE:-local/python:3.11-bookworm}
PYTHON=${PYTHON:-python3}

command -v "$DOCKER" >/dev/null 2>&1 || { echo "build.sh: docker is not installed" >&2; exit 1; }
"$DOCKER" info >/dev/null 2>&1 || { echo "build.sh: the Docker engine is not running (start dockerd)" >&2; exit 1; }

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  case $BASE in
    local/*)
      if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
        echo "build.sh: base image $BASE is missing and images/base/mkbase.sh needs root and debootstrap;" \
             "where registry pulls work, use a public slim base: BASE=python:3.11-slim images/build.sh $TAG" >&2
        exit 1
      fi
      echo "build.sh: base image $BASE is missing; building it with images/base/mkbase.sh (about a minute)"
      DOCKER=$DOCKER "$HERE/base/mkbase.sh" "$BASE" ;;
    *) echo "build.sh: base image $BASE is not here; docker build will pull it" ;;
  esac
fi

CTX=$(mktemp -d /tmp/raftkv-image.XXXXXX)
BUILD_ID=$(basename "$CTX")
cleanup() {
  rm -rf "$CTX"
  # The legacy builder leaves the build stage behind as a dangling image, and a rebuilt tag leaves its
  # previous image untagged: remove those dangling images of ours (and only ours).
  "$DOCKER" image prune -f --filter "label=raftkv.build-id=$BUILD_ID" >/dev/null 2>&1 || true
  "$DOCKER" image prune -f --filter "label=org.opencontainers.image.title=raftkv" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mkdir -p "$CTX/wheels"

# The project's wheel, built from a copy of this checkout's sources (the in-tree build/ and egg-info of
# the checkout stay untouched; no isolation when setuptools+wheel are here: offline and fast).
mkdir -p "$CTX/src"
(cd "$ROOT" && tar -cf - --exclude=__pycache__ setup.cfg pyproject.toml README.md raftkv raftctl) \
  | tar -xf - -C "$CTX/src"
if "$PYTHON" -c 'import setuptools, wheel' >/dev/null 2>&1; then
  "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$CTX/wheels" "$CTX/src"
else
  "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$CTX/wheels" "$CTX/src"
fi
WHEEL=$(ls "$CTX"/wheels/raftkv-*.whl)

# Its dependencies, as wheels for the image's interpreter (CPython 3.11, glibc 2.36), whatever the host runs.
ARCH=$(uname -m)
"$PYTHON" -m pip download -qq --disable-pip-version-check --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 \
  --platform "manylinux2014_$ARCH" --platform "manylinux_2_28_$ARCH" --platform "manylinux_2_34_$ARCH" \
  -d "$CTX/wheels" "$WHEEL"

rm -rf "$CTX/src"
cp "$HERE/raftkv/Dockerfile" "$HERE/raftkv/wait_ready.py" "$CTX/"
if ! "$DOCKER" build --force-rm --network none --build-arg "BASE=$BASE" \
     --build-arg "BUILD_ID=$BUILD_ID" -t "$TAG" "$CTX" \
     >"$CTX/build.log" 2>&1; then
  cat "$CTX/build.log" >&2
  echo "build.sh: docker build failed (log above)" >&2
  exit 1
fi

SIZE=$("$DOCKER" image inspect -f '{{.Size}}' "$TAG")
BASE_SIZE=$("$DOCKER" image inspect -f '{{.Size}}' "$BASE")
awk -v t="$TAG" -v s="$SIZE" -v b="$BASE_SIZE" \
  'BEGIN { printf "built %s: %.1f MB (base %.1f MB + raftkv layers %.1f MB)\n", t, s/1e6, b/1e6, (s-b)/1e6 }'
