#!/bin/sh
# The main job: start a VM with the built-in TPM. (Filled in as the parts land.)
set -eu
build=${1:-build}
exec "$build/tpmvm" -version
