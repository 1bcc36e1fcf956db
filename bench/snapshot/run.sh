#!/bin/sh
# Build and run the snapshot benchmark against QEMU + swtpm.
#   bench/snapshot/run.sh [BUILDDIR]      (default: build)
set -eu
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$srcdir/build}
ninja -C "$builddir" tpmvm bench/snapshot/snapshot-bench >/dev/null
exec "$builddir/bench/snapshot/snapshot-bench" --tpmvm "$builddir/tpmvm"
