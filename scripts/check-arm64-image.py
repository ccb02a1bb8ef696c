#!/usr/bin/env python3
"""Check the arm64 Linux Image header of a flat guest image we built (the loader accepts
nothing else): check-arm64-image.py IMAGE. Exits non-zero (an AssertionError) if it is off.
Used by splashos/build.sh and tests/guests/hostile/build.sh."""
import struct, sys

b = open(sys.argv[1], "rb").read()
code0, _c1, text_off, size, flags = struct.unpack_from("<IIQQQ", b, 0)
assert b[56:60] == b"ARM\x64", "no ARM\\x64 magic at byte 56"
assert code0 >> 26 == 0b000101, "code0 is not a branch"
assert text_off == 0 and flags == 0xA, (text_off, flags)
assert size >= len(b) and size % 4096 == 0, (size, len(b))
