#!/bin/sh
# Build and run the TPM benchmark: tpmvm's built-in TPM against raw libtpms
# (the ceiling) and QEMU + swtpm (the peer, skipped when absent).
#   bench/tpm/run.sh [BUILDDIR] [--seconds S]
# Runs twice: as the scheduler places the processes, then all on CPU 0
# (--cpu 0), where the host's cost of waking an idle CPU drops out.
set -eu
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$srcdir/build}
[ $# -gt 0 ] && shift
ninja -C "$builddir" tpmvm tools/tpmvm-img bench/tpm/tpm-bench >/dev/null
"$builddir/bench/tpm/tpm-bench" --tpmvm "$builddir/tpmvm" "$@"
echo
exec "$builddir/bench/tpm/tpm-bench" --tpmvm "$builddir/tpmvm" --cpu 0 "$@"
