#!/usr/bin/env python3
"""Write the seed corpus of fuzz-luks: LUKS1 areas (LUKS On-Disk Format
Specification 1.2) with the passphrase "fuzz" and 1000 PBKDF2 iterations,
built here from the specification so that the iteration counts stay under
the harness's cap (qemu-img's iter-time=1 still gives about 10000), plus
header variants that must be refused. Deterministic: the same bytes on every
run. Needs python3-cryptography (AES-XTS). Run: tests/fuzz/luks/make-seeds.py

The areas stop after slot 0's key material: the harness reads what lies
beyond the input, up to the payload offset, as zeros."""
import hashlib
import os
import random
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
PASS = b"fuzz"
STRIPES = 4000
ITERS = 1000
SECTOR = 512

rng = random.Random(0x1005)


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def diffuse(buf, hash_name):
    size = hashlib.new(hash_name).digest_size
    out = b""
    for j in range(0, (len(buf) + size - 1) // size):
        chunk = buf[j * size:(j + 1) * size]
        out += hashlib.new(hash_name, struct.pack(">I", j) + chunk).digest()[:len(chunk)]
    return out


def af_split(key, hash_name):
    buf = bytes(len(key))
    stripes = []
    for _ in range(STRIPES - 1):
        d = rand(len(key))
        stripes.append(d)
        buf = diffuse(bytes(a ^ b for a, b in zip(buf, d)), hash_name)
    stripes.append(bytes(a ^ b for a, b in zip(buf, key)))
    return b"".join(stripes)


def xts_encrypt(key, data):
    """Each 512-byte sector on its own, tweak LE64(sector number from 0)."""
    out = b""
    for n in range(len(data) // SECTOR):
        enc = Cipher(algorithms.AES(key), modes.XTS(struct.pack("<QQ", n, 0))).encryptor()
        out += enc.update(data[n * SECTOR:(n + 1) * SECTOR]) + enc.finalize()
    return out


def area(key_bytes=32, hash_name="sha256", flags=0):
    """A LUKS area with slot 0 unlocked by PASS; byte 592 = harness flags."""
    mk = rand(key_bytes)
    mk_salt = rand(32)
    digest = hashlib.pbkdf2_hmac(hash_name, mk, mk_salt, ITERS, 20)
    material_sectors = (key_bytes * STRIPES + SECTOR - 1) // SECTOR
    stride = (material_sectors + 7) // 8 * 8
    payload = 8 + 8 * stride
    slot_salt = rand(32)
    slot_key = hashlib.pbkdf2_hmac(hash_name, PASS, slot_salt, ITERS, key_bytes)
    material = af_split(mk, hash_name)
    material += bytes(material_sectors * SECTOR - len(material))
    enc = xts_encrypt(slot_key, material)

    hdr = b"LUKS\xba\xbe" + struct.pack(">H", 1)
    hdr += b"aes".ljust(32, b"\0") + b"xts-plain64".ljust(32, b"\0")
    hdr += hash_name.encode().ljust(32, b"\0")
    hdr += struct.pack(">II", payload, key_bytes) + digest + mk_salt + struct.pack(">I", ITERS)
    hdr += b"2d3e1f00-1005-4a5e-8f00-000000f0221e".ljust(40, b"\0")
    for i in range(8):
        if i == 0:
            hdr += struct.pack(">II", 0x00AC71F3, ITERS) + slot_salt
        else:
            hdr += struct.pack(">II", 0x0000DEAD, 0) + bytes(32)
        hdr += struct.pack(">II", 8 + i * stride, STRIPES)
    assert len(hdr) == 592
    head = hdr + bytes([flags]) + bytes(8 * SECTOR - 593)
    return head + enc


def patch(data, offset, value):
    return data[:offset] + value + data[offset + len(value):]


def slot(i):
    return 208 + 48 * i


full = area(32, "sha256", flags=1)
header = full[:593]
SEEDS = {
    # unlocks; flag bit 0: add a key, open with it, erase it again
    "01-aes128-sha256-unlocks-keymgmt": full,
    "02-aes128-sha1-unlocks": area(32, "sha1"),
    "03-header-only": header,
    "04-bad-magic": patch(header, 0, b"LUKS\0\0"),
    "05-version-2": patch(header, 6, b"\0\x02"),
    "06-cipher-twofish": patch(header, 8, b"twofish\0"),
    "07-mode-unterminated": patch(header, 40, b"x" * 32),
    "08-hash-sha512": patch(header, 72, b"sha512\0"),
    "09-key-bytes-48": patch(header, 108, struct.pack(">I", 48)),
    "10-payload-in-header": patch(header, 104, struct.pack(">I", 7)),
    "11-mk-zero-iterations": patch(header, 164, struct.pack(">I", 0)),
    "12-slot-overlaps-header": patch(header, slot(0) + 40, struct.pack(">I", 4)),
    "13-slots-overlap": patch(header, slot(1) + 40, struct.pack(">I", 100)),
    "14-slot-past-payload": patch(header, slot(7) + 40, struct.pack(">I", 0xfffffff0)),
    "15-stripes-wrong": patch(header, slot(2) + 44, struct.pack(">I", 1)),
    "16-slot-state-bad": patch(header, slot(3), struct.pack(">I", 0x12345678)),
    "17-active-zero-iterations": patch(header, slot(0) + 4, struct.pack(">I", 0)),
    "18-two-active-slots": patch(header, slot(5), struct.pack(">II", 0x00AC71F3, 1)),
    "19-too-many-iterations": patch(header, slot(0) + 4, struct.pack(">I", 0xffffffff)),
    "20-truncated-header": header[:300],
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
