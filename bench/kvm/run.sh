#!/bin/sh
# KVM benchmark: bench/kvm/run.sh [BUILD_DIR] [kvm-bench options, e.g. --ms 2000 --drive]
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
exec "$build/bench/kvm/kvm-bench" "$@"
