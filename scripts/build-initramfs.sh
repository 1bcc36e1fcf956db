#!/bin/sh
# Build the test initramfs for Linux guests: busybox (busybox-static) and an
# /init that reports what the kernel found of the TPM, then reboots (with
# tpmvm -no-reboot that ends tpmvm).
#
#   scripts/build-initramfs.sh OUTPUT.cpio.gz
#
# /init prints, on the console:
#   TPMVM-INIT: running
#   TPMVM-INIT: tpm0 <description from sysfs>      or   TPMVM-INIT: no tpm0
#   the kernel's tpm lines from dmesg
#   TPMVM-INIT: done
set -eu

out=${1:?usage: build-initramfs.sh OUTPUT.cpio.gz}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || busybox=/bin/busybox
[ -x "$busybox" ] || {
    echo "build-initramfs: busybox is missing; apt-get install busybox-static" >&2
    exit 1
}
# A dynamically linked busybox would need its libraries in the image.
if command -v file >/dev/null 2>&1 && file -L "$busybox" | grep -q dynamically; then
    echo "build-initramfs: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi
command -v cpio >/dev/null 2>&1 || {
    echo "build-initramfs: cpio is missing; apt-get install cpio" >&2
    exit 1
}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys"
cp "$busybox" "$root/bin/busybox"
for app in sh mount cat ls dmesg grep echo reboot sleep; do
    ln -s busybox "$root/bin/$app"
done
cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "TPMVM-INIT: running"
if [ -e /sys/class/tpm/tpm0 ]; then
    echo "TPMVM-INIT: tpm0 $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null).x" \
        "$(cat /sys/class/tpm/tpm0/device/description 2>/dev/null)"
else
    echo "TPMVM-INIT: no tpm0"
fi
dmesg | grep -i tpm
echo "TPMVM-INIT: done"
reboot -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
