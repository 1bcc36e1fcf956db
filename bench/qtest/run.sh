#!/bin/sh
# Build and run the qtest benchmark against QEMU.
#   bench/qtest/run.sh [BUILDDIR]      (default: build)
# Runs twice: as the scheduler places the processes, then all on CPU 0,
# where the host's cost of waking an idle CPU (tens of microseconds on a
# small VM, twice per round trip) drops out for both targets.
set -eu
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$srcdir/build}
ninja -C "$builddir" tpmvm bench/qtest/bench-qtest >/dev/null
"$builddir/bench/qtest/bench-qtest" --binary "$builddir/tpmvm"
echo
echo "All processes on CPU 0:"
exec taskset -c 0 "$builddir/bench/qtest/bench-qtest" --binary "$builddir/tpmvm"
