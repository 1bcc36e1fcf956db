#!/bin/sh
# Build and run the qtest benchmark against QEMU.
#   bench/qtest/run.sh [BUILDDIR]      (default: build)
set -eu
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$srcdir/build}
ninja -C "$builddir" tpmvm bench/qtest/bench-qtest >/dev/null
exec "$builddir/bench/qtest/bench-qtest" --binary "$builddir/tpmvm"
