#!/bin/sh
# mkbase.sh [TAG] [extra,debian,pkgs] -- build the slim Python base image WITHOUT any registry pull.
#
# debootstrap a Debian bookworm "minbase" root filesystem with python3 (3.11) and python3-venv from the
# Debian mirror, trim docs/man/locales/apt lists, and `docker import` it as TAG
# (default local/python:3.11-bookworm). Needs root (debootstrap) and a running Docker engine.
# Measured on a 2-vCPU CI machine: 45-70 s, ~125 MB. images/build.sh calls it only when TAG is missing.
set -eu
TAG=${1:-local/python:3.11-bookworm}
EXTRA=${2:+,$2}
DOCKER=${DOCKER:-docker}
command -v debootstrap >/dev/null 2>&1 || { echo "mkbase.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "mkbase.sh: debootstrap needs root" >&2; exit 2; }
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(mktemp -d /tmp/raftkv-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT INT TERM
debootstrap --variant=minbase --include="python3,python3-venv$EXTRA" bookworm "$ROOT" "$MIRROR" >/dev/null
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*
find "$ROOT"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  > "$ROOT"/etc/apt/sources.list
printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
  > "$ROOT"/etc/dpkg/dpkg.cfg.d/slim
printf 'APT::Install-Recommends "false";\n' > "$ROOT"/etc/apt/apt.conf.d/slim
tar --numeric-owner -C "$ROOT" -c . | "$DOCKER" import -c 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
echo "mkbase.sh: built $TAG"
