#!/usr/bin/env bash
# images/build.sh [--base IMAGE] [--python PYTHON] TAG — build the one raftkv image (node + client) with the
# local Docker engine; the build itself runs with --network none.
#
#   1. the base image: BASE (or --base), default the public python:3.11.14-slim-bookworm (pinned tag; the
#      engine pulls it once, for its own architecture). The offline alternative, local/python:3.11-bookworm,
#      is built by images/base/mkbase.sh when it is missing (debootstrap: needs root and the Debian mirror, no
#      registry) — CI and the container tier use it, since they have no registry;
#   2. the project's wheel is built on the host, and the wheels of its dependencies are downloaded on the host
#      (pip download) for CPython 3.11 / manylinux on the ENGINE's architecture (docker version
#      .Server.Arch: amd64 -> x86_64, arm64 -> aarch64), whatever the host is (macOS on Apple Silicon says
#      arm64, for which no manylinux wheels exist), into a throwaway build context;
#   3. `docker build --network none` installs them into a venv (multi-stage: no pip, no wheels in the result),
#      and the image's size is printed.
# Env: DOCKER (docker CLI, default `docker`), BASE (base image), PYTHON (host python with pip, default
# python3; raftctl passes its own interpreter). --base/--python win over BASE/PYTHON.
set -euo pipefail

PUBLIC_BASE=python:3.11.14-slim-bookworm
OFFLINE_BASE=local/python:3.11-bookworm
usage() {
  echo "usage: images/build.sh [--base IMAGE] [--python PYTHON] TAG   (e.g. images/build.sh localhost:5001/raftkv:dev;" \
       "offline base: --base $OFFLINE_BASE)" >&2
  exit 2
}
TAG=
while [ $# -gt 0 ]; do
  case $1 in
    --base) if [ $# -lt 2 ] || [ -z "$2" ]; then usage; fi; BASE=$2; shift 2 ;;
    --python) if [ $# -lt 2 ] || [ -z "$2" ]; then usage; fi; PYTHON=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "build.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$TAG" ] || usage; TAG=$1; shift ;;
  esac
done
[ -n "$TAG" ] || usage
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DOCKER=${DOCKER:-docker}
BASE=${BASE:-$PUBLIC_BASE}
PYTHON=${PYTHON:-python3}

command -v "$DOCKER" >/dev/null 2>&1 || { echo "build.sh: docker is not installed" >&2; exit 1; }
"$DOCKER" info >/dev/null 2>&1 || { echo "build.sh: the Docker engine is not running (start dockerd)" >&2; exit 1; }
"$PYTHON" -m pip --version >/dev/null 2>&1 || {
  echo "build.sh: $PYTHON has no pip: run from the project's venv (.venv/bin/raftctl build, or" \
       "PYTHON=.venv/bin/python images/build.sh $TAG)" >&2; exit 1; }

# The manylinux platform tag of the engine's architecture (not the host's: Docker Desktop on a Mac runs a
# Linux VM; its arm64 is manylinux's aarch64).
engine_arch() {
  local arch
  arch=$("$DOCKER" version -f '{{.Server.Arch}}' 2>/dev/null) || arch=
  case $arch in
    amd64|x86_64) echo x86_64 ;;
    arm64|aarch64) echo aarch64 ;;
    *) echo "build.sh: unsupported Docker engine architecture '${arch:-unknown}' (amd64 or arm64 only)" >&2
       exit 1 ;;
  esac
}

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  case $BASE in
    local/*)
      if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
        echo "build.sh: base image $BASE is missing and images/base/mkbase.sh needs root and debootstrap;" \
             "where registry pulls work, use the public base (the default): images/build.sh $TAG" >&2
        exit 1
      fi
      echo "build.sh: base image $BASE is missing; building it with images/base/mkbase.sh (about a minute)"
      DOCKER=$DOCKER "$HERE/base/mkbase.sh" "$BASE" ;;
    *) echo "build.sh: base image $BASE is not here yet; docker build pulls it" ;;
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

# Its dependencies, as wheels for the image's interpreter (CPython 3.11, glibc 2.36) on the engine's CPU.
ARCH=$(engine_arch)
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
