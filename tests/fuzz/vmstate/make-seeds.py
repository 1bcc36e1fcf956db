#!/usr/bin/env python3
"""Write the seed corpus of fuzz-vmstate: streams for the sections that
fuzz-vmstate.c registers, valid ones and a few that must be refused.
Stream format: docs/vmstate.md. Run: tests/fuzz/vmstate/make-seeds.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def section(name, instance, version, payload):
    n = name if isinstance(name, bytes) else name.encode()
    return (bytes([len(n)]) + n + struct.pack(">IIQ", instance, version, len(payload)) +
            payload)


def stream(*sections, end=b"\0"):
    return b"TPVM" + struct.pack(">I", 1) + b"".join(sections) + end


def plain(version=3, on=1):
    p = struct.pack(">BBH3IQ", on, 0x11, 0x2233, 1, 2, 3, 0x0102030405060708) + b"seven!!"
    if version >= 3:
        p += struct.pack(">I", 0xdeadbeef)
    return p


def nested(version=2):
    def leaf(i):
        return struct.pack(">BHHB", i, 0x100 + i, 0x200 + i, i & 1) + (
            bytes([0x77]) if version >= 2 else b"")

    def mid(m):
        return struct.pack(">I", 0x1000 + m) + b"".join(leaf(m * 3 + i) for i in range(3)) + bytes(
            [m] * 6)

    return struct.pack(">H", 2) + mid(0) + mid(1) + struct.pack(">Q", 0x0a0b0c0d)


def blob(gen, items):
    flat = b"".join(items)
    return struct.pack(">IB", gen, len(items)) + flat + struct.pack(">I", sum(flat))


def tis(active=0, rw_offset=3, buffer=bytes(range(64))):
    p = bytes([active, 0xff, 0xff, 0]) + struct.pack(">II", rw_offset, len(buffer)) + buffer
    for loc in range(5):
        access = 0x80 | (0x20 if loc == active else 0)
        state = 1 if loc == active else 0
        p += bytes([state, access, 0, 0]) + struct.pack(">IIII", 0x80, 0x0f, 0, 0)
    return p


SEEDS = {
    "01-empty-stream": stream(),
    "02-all-sections": stream(
        section("fuzz-plain", 0, 3, plain()),
        section("fuzz-nested", 0, 2, nested()),
        section("fuzz-blob", 0, 1, blob(7, [b"wxyz", b"1234"])),
        section("fuzz-blob", 1, 1, blob(8, [])),
        section("tpm-tis", 0, 1, tis())),
    "03-older-versions": stream(
        section("fuzz-plain", 0, 2, plain(2)),
        section("fuzz-nested", 0, 1, nested(1))),
    "04-blob-full": stream(section("fuzz-blob", 1, 1, blob(9, [bytes([i] * 4) for i in range(16)]))),
    "05-tis-only": stream(section("tpm-tis", 0, 1, tis(active=0xff, rw_offset=64))),
    "06-bad-bool-after-good": stream(
        section("fuzz-blob", 0, 1, blob(1, [b"abcd"])),
        section("fuzz-plain", 0, 3, plain(on=2))),
    "07-duplicate": stream(
        section("fuzz-nested", 0, 2, nested()),
        section("fuzz-nested", 0, 2, nested())),
    "08-newer-version": stream(section("fuzz-plain", 0, 4, plain() + b"\0\0\0\0")),
    "09-unknown-instance": stream(section("fuzz-blob", 2, 1, blob(1, []))),
    "10-bad-blob-sum": stream(section("fuzz-blob", 0, 1, blob(1, [b"abcd"])[:-1] + b"\0")),
    "11-truncated": stream(section("fuzz-plain", 0, 3, plain()))[:-9],
    "12-trailing-bytes": stream(section("fuzz-plain", 0, 3, plain())) + b"junk",
    "13-tis-bad-rw-offset": stream(section("tpm-tis", 0, 1, tis(rw_offset=65))),
    # regression: a name with control bytes once reached the error message as it was
    "14-name-with-control-bytes": stream(section(b"f\tzz\x1b[2J\xff'", 0, 1, b"")),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
