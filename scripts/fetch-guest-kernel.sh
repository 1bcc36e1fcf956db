#!/bin/sh
# Fetch Debian's cloud kernel (linux-image-cloud-amd64) for the Linux guest
# tests, without installing it: apt-get download + dpkg-deb -x into a cache.
#
#   scripts/fetch-guest-kernel.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $TPMVM_GUEST_KERNEL_DIR, else ~/.cache/tpmvm/guest-kernel.
# It ends up holding:
#   vmlinuz   the bzImage as Debian ships it
#   vmlinux   the kernel ELF, taken out of the bzImage's compressed payload
#             (booting it skips the decompressor: on a PVM host a bzImage needs
#             ~110 s to decompress itself, the vmlinux prints its banner in 12-20 s)
#   version   the kernel release, e.g. 6.1.0-56-cloud-amd64
# Prints CACHE_DIR on success. Does nothing when the files are already there.
set -eu

cache=${1:-${TPMVM_GUEST_KERNEL_DIR:-${HOME:-/tmp}/.cache/tpmvm/guest-kernel}}
meta=linux-image-cloud-amd64

die() {
    printf 'fetch-guest-kernel: %s\n' "$*" >&2
    exit 1
}

if [ -s "$cache/vmlinuz" ] && [ -s "$cache/vmlinux" ] && [ -s "$cache/version" ]; then
    echo "$cache"
    exit 0
fi
for tool in od dd; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing"
done
mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ ! -s "$cache/vmlinuz" ] || [ ! -s "$cache/version" ]; then
    for tool in apt-get apt-cache dpkg-deb; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing; this script needs a Debian system"
    done
    # The metapackage names the current kernel package.
    image_pkg() {
        apt-cache depends "$meta" 2>/dev/null |
            awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
    }
    pkg=$(image_pkg)
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(image_pkg)
    fi
    [ -n "$pkg" ] || die "apt does not know '$meta' (run 'apt-get update' as root, with Debian's main archive in sources.list)"
    (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
        die "apt-get download $pkg failed (network, or apt lists out of date?)"
    deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "apt-get download $pkg produced no .deb"
    dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
    vmlinuz=$(ls "$work"/root/boot/vmlinuz-* 2>/dev/null | head -n 1)
    [ -n "$vmlinuz" ] || die "$pkg has no /boot/vmlinuz-*"
    cp "$vmlinuz" "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
    echo "${vmlinuz##*/vmlinuz-}" >"$cache/version"
fi
vmlinuz=$cache/vmlinuz

# Little-endian unsigned integer of $3 bytes at offset $2 of file $1.
le() {
    od -An -t "u$3" -j "$2" -N "$3" "$1" | tr -d ' '
}

# x86 boot protocol 2.08+: the setup header gives the compressed payload's
# offset (0x248, from the protected-mode part) and length (0x24c); the
# payload is an ELF vmlinux, compressed, with its uncompressed size appended
# as 4 bytes (Documentation/arch/x86/boot.rst).
[ "$(dd if="$vmlinuz" bs=1 skip=514 count=4 2>/dev/null)" = "HdrS" ] ||
    die "$vmlinuz has no x86 setup header"
setup_sects=$(le "$vmlinuz" 497 1)
[ "$setup_sects" -ne 0 ] || setup_sects=4
payload_off=$(le "$vmlinuz" 584 4)
payload_len=$(le "$vmlinuz" 588 4)
start=$(((setup_sects + 1) * 512 + payload_off))
[ "$payload_len" -gt 4 ] || die "$vmlinuz has no payload (boot protocol too old?)"
dd if="$vmlinuz" of="$work/payload" bs=4096 iflag=skip_bytes,count_bytes \
    skip="$start" count=$((payload_len - 4)) 2>/dev/null
magic=$(od -An -tx1 -N 6 "$work/payload" | tr -d ' \n')
case $magic in
fd377a585a00*) decomp="xz -dc --single-stream" ;;
28b52ffd*) decomp="zstd -dcq" ;;
1f8b*) decomp="gzip -dc" ;;
02214c18*) decomp="lz4 -dc" ;;
5d0000*) decomp="xz -dc --format=lzma" ;;
*) die "unknown compression of the kernel payload (magic $magic)" ;;
esac
# The bzImage is usable without this step: say what is missing, keep it.
if ! command -v "${decomp%% *}" >/dev/null 2>&1; then
    printf 'fetch-guest-kernel: no vmlinux: %s is needed to decompress the kernel payload (apt-get install %s); %s/vmlinuz is there\n' \
        "${decomp%% *}" "${decomp%% *}" "$cache" >&2
    echo "$cache"
    exit 0
fi
$decomp <"$work/payload" >"$work/vmlinux" 2>/dev/null || true
[ "$(od -An -c -N 4 "$work/vmlinux" | tr -d ' ')" = "177ELF" ] ||
    die "decompressing the payload of $vmlinuz with '$decomp' gave no ELF image"
mv "$work/vmlinux" "$cache/vmlinux"
echo "$cache"
