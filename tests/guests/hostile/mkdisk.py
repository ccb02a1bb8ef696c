#!/usr/bin/env python3
"""Pattern disks for the hostile guest's virtio-blk phase (disk.c checks every word it reads).

Word j (little-endian u32, 0..127) of 512-byte sector n is
    seed ^ (n * 0x9E3779B1 mod 2^32) ^ (j * 0x01000193 mod 2^32)
with SEED_RW for the disk the guest may write (attached cow) and SEED_RO for the one that
offers VIRTIO_BLK_F_RO (attached ro).

    mkdisk.py OUT SIZE rw|ro       (SIZE in bytes, a multiple of 4096)
"""
import struct
import sys

SEED_RW = 0x4D424C4B   # "MBLK"
SEED_RO = 0x524F4449   # "RODI"
SECTOR = 512


def sector(seed, n):
    base = seed ^ ((n * 0x9E3779B1) & 0xFFFFFFFF)
    return struct.pack("<128I", *[base ^ ((j * 0x01000193) & 0xFFFFFFFF) for j in range(128)])


def image(size, seed):
    assert size % 4096 == 0 and size > 0, size
    return b"".join(sector(seed, n) for n in range(size // SECTOR))


def make(path, size, kind):
    data = image(size, SEED_RO if kind == "ro" else SEED_RW)
    with open(path, "wb") as f:
        f.write(data)
    return data


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in ("rw", "ro"):
        sys.exit("usage: mkdisk.py OUT SIZE rw|ro")
    make(sys.argv[1], int(sys.argv[2], 0), sys.argv[3])
