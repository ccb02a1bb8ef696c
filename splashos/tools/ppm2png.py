#!/usr/bin/env python3
"""ppm2png: convert a binary PPM (P6, maxval 255) to PNG with only the standard library.

    python3 splashos/tools/ppm2png.py IN.ppm OUT.png

(e.g. the image of `build/splash-host -o DIR raytrace`, or one decoded from a SPLASHOS log).
"""
import struct
import sys
import zlib


def read_ppm(data):
    """Returns (width, height, rgb bytes) of a P6 image; comments in the header are allowed."""
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace() and data[pos:pos + 1] != b"#":
            pos += 1
        if start == pos:
            raise ValueError("truncated PPM header")
        fields.append(data[start:pos])
    if fields[0] != b"P6":
        raise ValueError("not a binary PPM (P6): magic %r" % fields[0])
    w, h, maxval = (int(f) for f in fields[1:])
    if w <= 0 or h <= 0 or maxval != 255:
        raise ValueError("unsupported PPM: %dx%d maxval %d" % (w, h, maxval))
    pos += 1  # the single whitespace after maxval
    pix = data[pos:pos + 3 * w * h]
    if len(pix) != 3 * w * h:
        raise ValueError("PPM pixel data short: %d of %d bytes" % (len(pix), 3 * w * h))
    return w, h, pix


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def to_png(w, h, pix):
    stride = 3 * w
    raw = b"".join(b"\x00" + pix[y * stride:(y + 1) * stride] for y in range(h))  # filter 0 per row
    return (b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +  # 8-bit RGB
            png_chunk(b"IDAT", zlib.compress(raw, 9)) +
            png_chunk(b"IEND", b""))


def main(argv):
    if len(argv) != 3:
        print("usage: ppm2png.py IN.ppm OUT.png", file=sys.stderr)
        return 2
    try:
        with open(argv[1], "rb") as f:
            w, h, pix = read_ppm(f.read())
        with open(argv[2], "wb") as f:
            f.write(to_png(w, h, pix))
    except (OSError, ValueError) as e:
        print("ppm2png: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
