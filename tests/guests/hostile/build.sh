#!/bin/bash
# Build the hostile test guest as a flat arm64 Linux Image: build.sh OUTFILE
# Also writes the pattern disks configs/test-hostile.conf attaches, beside OUTFILE:
# hostile-disk.img (1 MiB, the guest's cow disk) and hostile-ro.img (256 KiB, its ro disk).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTFILE" >&2; exit 2; }
out=$1
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CROSS=${CROSS:-aarch64-linux-gnu-}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CFLAGS="-ffreestanding -nostdlib -mgeneral-regs-only -O2 -mstrict-align -fno-pic -fno-pie
        -fno-stack-protector -fno-builtin -Wall -Wextra -Werror -march=armv8-a"
${CROSS}gcc $CFLAGS -c "$src/start.S" -o "$tmp/start.o"
${CROSS}gcc $CFLAGS -c "$src/hostile.c" -o "$tmp/hostile.o"   # (it includes disk.c and net.c)
${CROSS}gcc $CFLAGS -c "$src/virtio.c" -o "$tmp/virtio.o"
${CROSS}gcc $CFLAGS -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,-T,"$src/hostile.ld" \
	"$tmp/start.o" "$tmp/hostile.o" "$tmp/virtio.o" -o "$tmp/hostile.elf" -lgcc
${CROSS}objcopy -O binary "$tmp/hostile.elf" "$tmp/hostile.img"
# The loader only accepts an arm64 Image: check the header we meant to write.
python3 "$src/../../../scripts/check-arm64-image.py" "$tmp/hostile.img"
cp "$tmp/hostile.elf" "${out%.img}.elf" 2>/dev/null || true
mv "$tmp/hostile.img" "$out"
dir=$(dirname "$out")
python3 "$src/mkdisk.py" "$tmp/disk.img" 1048576 rw && mv "$tmp/disk.img" "$dir/hostile-disk.img"
python3 "$src/mkdisk.py" "$tmp/ro.img" 262144 ro && mv "$tmp/ro.img" "$dir/hostile-ro.img"
echo "hostile: built $out ($(stat -c %s "$out") bytes)"
