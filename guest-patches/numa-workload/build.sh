#!/usr/bin/env bash
# Builds the NUMA bench's Linux guest initrd: memhog.c (this directory) compiled static for
# arm64, packed as /bin/memhog in a small gzip'd newc cpio, appended to the standard guest
# initramfs (build/guest/initrd.img, `make guest`). Linux unpacks concatenated archives in
# order, so the result is the usual initramfs (same /init, modules, busybox) plus memhog.
# Usage: build.sh [OUT]   (default build/guest/numa-initrd.img; also writes build/guest/memhog)
# Rebuilds only when memhog.c, this script or initrd.img is newer than OUT.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GUEST=${MBALL_GUEST_DIR:-$ROOT/build/guest}
OUT=${1:-$GUEST/numa-initrd.img}
BASE=$GUEST/initrd.img
SRC=$HERE/memhog.c
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
[ -s "$BASE" ] || { echo "numa-workload: $BASE missing: run 'make guest' first" >&2; exit 1; }
command -v "$CC" >/dev/null || { echo "numa-workload: $CC not found (Debian: gcc-aarch64-linux-gnu)" >&2; exit 1; }
if [ -s "$OUT" ] && [ "$OUT" -nt "$SRC" ] && [ "$OUT" -nt "$BASE" ] && [ "$OUT" -nt "${BASH_SOURCE[0]}" ]; then
  exit 0
fi
ST=$(mktemp -d); trap 'rm -rf "$ST"' EXIT
mkdir -p "$ST/root/bin"
# Freestanding (no arm64 libc headers here): its own _start and raw system calls.
"$CC" -O2 -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie -Wall -Wextra -Werror \
  -o "$ST/root/bin/memhog" "$SRC" -lgcc
cp "$ST/root/bin/memhog" "$GUEST/memhog.tmp" && mv "$GUEST/memhog.tmp" "$GUEST/memhog"
(cd "$ST/root" && find bin/memhog | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$ST/extra.cpio.gz"
cat "$BASE" "$ST/extra.cpio.gz" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "numa-workload: $(basename "$OUT"): $(stat -c %s "$OUT") bytes (initrd.img + memhog, $(stat -c %s "$ST/extra.cpio.gz") bytes)"
