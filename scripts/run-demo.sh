#!/bin/sh
# The main job (`make run`): boot the demo guest under KVM with tpmvm's
# built-in TPM, whose state lives in a LUKS-encrypted qcow2 image.
#
#   scripts/run-demo.sh [BUILD_DIR]
#
# First run: creates run/tpm-pass.txt (a random passphrase, mode 0600) and
# run/tpm.qcow2 (1 MiB, encrypted with that passphrase). Every run: the guest
# (tests/guest, mode=demo) prints the TPM's identity, fresh random bytes, the
# PCRs it extended with its measurements and a boot counter kept in TPM NV;
# run it again and the counter has gone up. Without a usable /dev/kvm the same
# demo runs through the qtest protocol (tpm-qtest-demo drives the TPM the way
# the guest would), so the TPM can be seen working anywhere.
#
# Environment: TPMVM_RUN_DIR (default: run/ in the source tree).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
run=${TPMVM_RUN_DIR:-$src/run}
tpmvm=$build/tpmvm
guest=$build/tests/guest/tpm-guest.elf
qtest_demo=$build/tests/guest/tpm-qtest-demo
pass=$run/tpm-pass.txt
img=$run/tpm.qcow2

say() {
    printf 'run-demo: %s\n' "$*"
}

die() {
    printf 'run-demo: %s\n' "$*" >&2
    exit 1
}

[ -x "$tpmvm" ] || die "$tpmvm is missing; build first with 'make' (or ./configure && ninja -C build)"

mkdir -p "$run"
chmod 700 "$run"

# The passphrase: random, no trailing newline (the secret is the file's bytes).
if [ ! -s "$pass" ]; then
    (
        umask 077
        head -c 24 /dev/urandom | base64 | tr -d '\n=' >"$pass.tmp"
        mv "$pass.tmp" "$pass"
    )
    say "created a random passphrase in $pass (mode 0600)"
fi
chmod 600 "$pass"

# The TPM's image: qcow2 with LUKS encryption, 1 MiB (docs/nvram.md).
if [ ! -f "$img" ]; then
    if [ -x "$build/tools/tpmvm-img" ]; then
        mkimg=$build/tools/tpmvm-img
    elif [ -x "$build/tpmvm-img" ]; then
        mkimg=$build/tpmvm-img
    elif command -v qemu-img >/dev/null 2>&1; then
        mkimg=qemu-img
    else
        die "neither tpmvm-img nor qemu-img is available to create $img; run scripts/install-deps.sh"
    fi
    (umask 077 && "$mkimg" create -q -f qcow2 --object "secret,id=sec0,file=$pass" \
        -o encrypt.format=luks,encrypt.key-secret=sec0 "$img" 1M) ||
        die "could not create the encrypted TPM image $img with $mkimg"
    say "created the encrypted TPM state image $img (LUKS, key from $pass)"
fi

# The same TPM, whichever way the demo runs.
set -- -object "secret,id=sec0,file=$pass" \
    -drive "if=none,id=tpmnv,file=$img,format=qcow2,encrypt.format=luks,encrypt.key-secret=sec0" \
    -tpmdev builtin,id=tpm0,drive=tpmnv \
    -device tpm-tis,tpmdev=tpm0

# Why KVM cannot be used here, or nothing.
kvm_problem() {
    if [ ! -e /dev/kvm ]; then
        echo "/dev/kvm does not exist (no KVM module, or no hardware virtualization)"
    elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "/dev/kvm is not readable and writable by $(id -un) (add the user to group 'kvm')"
    elif [ ! -f "$guest" ]; then
        echo "the demo guest $guest was not built (meson option 'guest')"
    fi
}

run_qtest() {
    [ -x "$qtest_demo" ] || die "$qtest_demo is missing; build first with 'make'"
    say "running the same demo through qtest: the TIS registers are driven from the host"
    TPMVM_BINARY=$tpmvm "$qtest_demo" --payload "$guest" -- "$@"
}

problem=$(kvm_problem)
if [ -n "$problem" ]; then
    say "KVM is not usable here: $problem"
    run_qtest "$@"
    exit $?
fi

say "booting the demo guest under KVM with the built-in TPM ($img)"
errlog=$run/tpmvm-stderr.log
outlog=$run/tpmvm-serial.log
stfile=$run/tpmvm-status
# Serial output shows live and is kept: tpmvm's exit status 1 means either
# "the guest passed" (isa-debug-exit value 0) or a start-up error of tpmvm,
# and only the guest's RESULT line tells them apart.
{
    st=0
    "$tpmvm" -machine pc -accel kvm -m 64 -nographic -no-reboot \
        -kernel "$guest" -append "mode=demo" \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        "$@" 2>"$errlog" </dev/null || st=$?
    echo "$st" >"$stfile"
} | tee "$outlog"
status=$(cat "$stfile")
cat "$errlog" >&2
if [ "$status" = 1 ] && grep -q 'RESULT: PASS' "$outlog"; then
    say "done; run it again and the boot counter goes up (state: $img)"
    exit 0
fi
if grep -q 'RESULT: FAIL' "$outlog"; then
    die "the guest reported a failed TPM step (see above)"
fi
if grep -q -- '-accel kvm:' "$errlog"; then
    say "KVM could not start the VM (see above)"
    run_qtest "$@"
    exit $?
fi
die "tpmvm ended with status $status before the guest finished (see above)"
