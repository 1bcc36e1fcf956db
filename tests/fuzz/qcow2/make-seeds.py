#!/usr/bin/env python3
"""Write the seed corpus of fuzz-qcow2: small real images made by tpmvm-img
and qemu-img (plain, snapshots, compressed, LUKS, legacy AES, v2, extended
L2, zstd, dirty) and by qemu-system-x86_64 (a snapshot with VM state).
Zero runs of 64 bytes or more are written as "ZRUN" + BE32 length, which the
harness expands (a LUKS area is 1 MiB of mostly zeros).

  tests/fuzz/qcow2/make-seeds.py BUILD_DIR

Images with LUKS get the area of tests/fuzz/luks/make-seeds.py (passphrase
"fuzz", 1000 PBKDF2 iterations: under the harness's cap) in place of the
one qemu-img wrote, and their data is written afterwards with that key."""
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
SECRET = ["--object", "secret,id=sec0,data=fuzz"]


def luks_area():
    spec = importlib.util.spec_from_file_location(
        "luks_seeds", os.path.join(HERE, "..", "luks", "make-seeds.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.area(32, "sha256")


def run(*cmd, stdin=None):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, input=stdin)


def qemu_io(path, *cmds, luks=False):
    args = ["qemu-io"]
    if luks:
        args += SECRET + ["--image-opts",
                          "driver=qcow2,encrypt.key-secret=sec0,file.filename=" + path]
    else:
        args += ["-f", "qcow2", path]
    for c in cmds:
        args += ["-c", c]
    run(*args)


def header_extension(data, wanted):
    """(offset, length) of the data of header extension `wanted` (qcow2 spec)."""
    version = struct.unpack(">I", data[4:8])[0]
    pos = 72 if version < 3 else struct.unpack(">I", data[100:104])[0]
    while pos + 8 <= len(data):
        kind, length = struct.unpack(">II", data[pos:pos + 8])
        if kind == 0:
            break
        if kind == wanted:
            return pos + 8, length
        pos += 8 + (length + 7) // 8 * 8
    raise SystemExit("header extension 0x%x not found" % wanted)


def put_luks_area(path):
    data = bytearray(open(path, "rb").read())
    ext, _ = header_extension(data, 0x0537BE77)
    offset, length = struct.unpack(">QQ", data[ext:ext + 16])
    area = luks_area()
    assert len(area) <= length
    data[offset:offset + length] = area + bytes(length - len(area))
    open(path, "wb").write(bytes(data))


def compact(data):
    out = bytearray()
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == 0:
            j += 1
        if j - i >= 64:
            out += b"ZRUN" + struct.pack(">I", j - i)
            i = j
        else:
            out.append(data[i])
            i += 1
    assert b"ZRUN" not in data
    return bytes(out)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    img = os.path.join(os.path.abspath(sys.argv[1]), "tools", "tpmvm-img")
    tmp = tempfile.mkdtemp(prefix="qcow2-seeds-")
    seeds = {}

    def path(name):
        return os.path.join(tmp, name)

    try:
        # plain, made by tpmvm-img, data at both ends
        run(img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path("plain"), "64K")
        qemu_io(path("plain"), "write -P 0xaa 0 1k", "write -P 0x55 60k 512")
        seeds["01-plain-tpmvm-img"] = path("plain")

        # two snapshots (one by each tool) and a zero cluster
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path("snap"),
            "64K")
        qemu_io(path("snap"), "write -P 0x11 0 1k")
        run("qemu-img", "snapshot", "-c", "first", path("snap"))
        qemu_io(path("snap"), "write -P 0x22 512 1k", "write -z 2k 512")
        run(img, "snapshot", "-q", "-c", "second", path("snap"))
        seeds["02-snapshots"] = path("snap")

        # compressed clusters
        with open(path("raw"), "wb") as f:
            f.write(bytes(range(256)) * 16 + b"A" * 4096 + bytes(4096))
        run("qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o",
            "cluster_size=1024", path("raw"), path("comp"))
        seeds["03-compressed"] = path("comp")

        # LUKS (aes-128 keeps the area at 1 MiB); data written with the new key
        run("qemu-img", "create", "-q", *SECRET, "-f", "qcow2", "-o",
            "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128,"
            "encrypt.iter-time=10,cluster_size=512", path("luks"), "64K")
        put_luks_area(path("luks"))
        qemu_io(path("luks"), "write -P 0x77 0 1k", luks=True)
        seeds["04-luks"] = path("luks")

        # qcow2 v2, extended L2, zstd: other header layouts and refused features
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=512",
            path("v2"), "64K")
        qemu_io(path("v2"), "write -P 0x33 4k 1k")
        seeds["05-version-2"] = path("v2")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "extended_l2=on,cluster_size=16384", path("el2"), "64K")
        seeds["06-extended-l2"] = path("el2")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "compression_type=zstd,cluster_size=512", path("zstd"), "64K")
        seeds["07-zstd"] = path("zstd")

        # legacy AES (crypt_method 1) and a dirty image: header patches of a copy
        data = bytearray(open(path("plain"), "rb").read())
        data[32:36] = struct.pack(">I", 1)
        open(path("aes"), "wb").write(bytes(data))
        seeds["08-legacy-aes-header"] = path("aes")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o",
            "lazy_refcounts=on,cluster_size=512", path("dirty"), "64K")
        qemu_io(path("dirty"), "write -P 0x44 0 512")
        data = bytearray(open(path("dirty"), "rb").read())
        data[72:80] = struct.pack(">Q", struct.unpack(">Q", data[72:80])[0] | 1)
        open(path("dirty"), "wb").write(bytes(data))
        seeds["09-dirty-lazy-refcounts"] = path("dirty")

        # a snapshot with VM state, saved by QEMU itself
        if shutil.which("qemu-system-x86_64"):
            run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512",
                path("vm"), "64K")
            run("qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
                "-drive", "if=none,id=d0,format=qcow2,file=" + path("vm"), "-monitor",
                "stdio", stdin=b"savevm vm1\nquit\n")
            seeds["10-vmstate-qemu"] = path("vm")

        os.makedirs(OUT, exist_ok=True)
        for name, src in seeds.items():
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(compact(open(src, "rb").read()))
    finally:
        shutil.rmtree(tmp)


main()
