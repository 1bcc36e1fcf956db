#!/bin/sh
# Install every Debian 12 package that building, running and testing tpmvm need.
# Idempotent: when everything is present it returns at once without touching apt.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the benchmark peers
set -eu

# build
PKGS="gcc make pkg-config meson ninja-build libglib2.0-dev libjson-glib-dev
      libtpms-dev nettle-dev zlib1g-dev libseccomp-dev"
# tests: real peers (qemu-img/qemu-io, swtpm, QEMU for qtest comparisons),
# clang for the fuzz targets, busybox for the test initramfs
PKGS="$PKGS qemu-utils swtpm swtpm-tools qemu-system-x86 clang libclang-rt-14-dev
      busybox-static cpio lz4"
if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS hyperfine"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root (or install them with apt-get)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
