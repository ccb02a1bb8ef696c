#!/usr/bin/env python3
"""Decode the files a SPLASHOS VM wrote with sp_output() from its console log.

A file appears in the log as (format in splashos/include/splash.h)
    @splash-file NAME LEN
    <base64 lines of at most 76 characters>
    @splash-end NAME
possibly with other lines of the log before and after, and with CR LF line ends.

    extract_files.py VM.log [OUTDIR]      # writes OUTDIR/NAME (default: .), lists them

As a module: extract(text, outdir) -> [paths written]; blocks(text) -> [(name, bytes)].
A block whose length does not match, whose base64 is broken or that has no end line raises
ValueError (a truncated log must not pass as a good file)."""
import base64
import binascii
import re
import sys
from pathlib import Path

BEGIN = re.compile(r"^@splash-file (\S+) (\d+)\s*$")
END = re.compile(r"^@splash-end (\S+)\s*$")


def blocks(text):
    """Every file in the log, in order, as (name, data)."""
    out = []
    cur = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if cur is None:
            m = BEGIN.match(line)
            if m:
                cur = (m.group(1), int(m.group(2)), [], lineno)
            continue
        m = END.match(line)
        if m:
            name, length, parts, start = cur
            if m.group(1) != name:
                raise ValueError(f"line {lineno}: @splash-end {m.group(1)} closes {name} (line {start})")
            try:
                data = base64.b64decode("".join(parts), validate=True)
            except (binascii.Error, ValueError) as e:
                raise ValueError(f"{name} (line {start}): bad base64: {e}") from e
            if len(data) != length:
                raise ValueError(f"{name} (line {start}): {len(data)} bytes decoded, header says {length}")
            out.append((name, data))
            cur = None
            continue
        if BEGIN.match(line):
            raise ValueError(f"line {lineno}: a new @splash-file inside {cur[0]} (line {cur[3]})")
        if len(line) > 76 or not re.fullmatch(r"[A-Za-z0-9+/=]*", line):
            raise ValueError(f"line {lineno}: not a base64 line inside {cur[0]}: {line[:80]!r}")
        cur[2].append(line)
    if cur is not None:
        raise ValueError(f"{cur[0]} (line {cur[3]}): no @splash-end (log truncated?)")
    return out


def extract(text, outdir):
    """Write every file of the log into outdir (the last one wins for repeated names)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in blocks(text):
        safe = Path(name).name
        if safe in ("", ".", "..") or safe != name:
            raise ValueError(f"refusing file name {name!r}")
        p = outdir / safe
        p.write_bytes(data)
        if p not in written:
            written.append(p)
    return written


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    text = Path(argv[1]).read_bytes().decode("utf-8", "replace")
    try:
        files = extract(text, argv[2] if len(argv) == 3 else ".")
    except ValueError as e:
        print(f"extract_files: {e}", file=sys.stderr)
        return 1
    for p in files:
        print(f"{p} {p.stat().st_size} bytes")
    if not files:
        print("extract_files: no @splash-file blocks in the log", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
