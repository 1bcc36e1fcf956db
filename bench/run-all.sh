#!/bin/sh
# Run every benchmark (make bench). Each part's bench/PART/run.sh builds what it
# needs, measures tpmvm against the ceiling (raw libtpms) and the peer (QEMU,
# swtpm, qemu-img) in the same run, and prints ratios. Not part of the tests.
#   bench/run-all.sh [BUILDDIR] [PART...]
set -u
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "${1:-$srcdir/build}" && pwd)
[ $# -gt 0 ] && shift
parts=${*:-"qtest block tpm snapshot kvm"}
status=0
for p in $parts; do
    script=$srcdir/bench/$p/run.sh
    if [ ! -x "$script" ]; then
        echo "== bench/$p: no run.sh, skipped"
        continue
    fi
    echo "== bench/$p"
    "$script" "$builddir" || { echo "bench/$p: failed (status $?)"; status=1; }
done
exit $status
