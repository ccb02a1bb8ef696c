#!/bin/bash
# Build SPLASHOS as a flat arm64 Linux Image with every app in splashos/apps linked in, and
# the input archive:   build.sh OUT_IMAGE [OUT_CPIO]
#   OUT_IMAGE  e.g. build/guest/splashos.img (an .elf with symbols is left beside it)
#   OUT_CPIO   e.g. build/guest/splash-inputs.cpio: newc archive of splashos/inputs/
# SPLASHOS_LINK_ADDR (default 0x40000000, where mball loads it) links it elsewhere:
# 0x40200000 is where plain QEMU's -kernel puts an Image (tests/bench/splash runs it there).
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 OUT_IMAGE [OUT_CPIO]" >&2; exit 2; }
out=$1
cpio_out=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CROSS=${CROSS:-aarch64-linux-gnu-}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d /tmp/splashos-build.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT

COMMON="-ffreestanding -fno-pic -fno-pie -fno-stack-protector -march=armv8-a -mno-outline-atomics
        -ffp-contract=off -fno-tree-loop-distribute-patterns -fno-common -ffunction-sections
        -g -Wall -Wextra -I$here/include -I$here/kernel"
# the kernel: strict alignment (its early code runs with the MMU off, where memory is Device)
KFLAGS="$COMMON -O2 -mstrict-align -Werror"
# the exception path touches no FP/SIMD register
TFLAGS="$KFLAGS -mgeneral-regs-only"
# the apps: as on the host (-O2 -ffp-contract=off), but freestanding
AFLAGS="$COMMON -O2"

objs=()
cc() { local flags=$1 src=$2 o="$tmp/$(basename "${2%.*}").o"; ${CROSS}gcc $flags -c "$src" -o "$o"; objs+=("$o"); }
cc "$KFLAGS" "$here/kernel/start.S"
for f in "$here"/kernel/*.c; do
	case $(basename "$f") in
	trap.c) cc "$TFLAGS" "$f" ;;
	*) cc "$KFLAGS" "$f" ;;
	esac
done
for f in "$here"/apps/*.c; do
	o="$tmp/app_$(basename "${f%.c}").o"
	${CROSS}gcc $AFLAGS -c "$f" -o "$o"
	objs+=("$o")
done
link=${SPLASHOS_LINK_ADDR:-0x40000000}
sed "s/^\t\. = 0x40000000;/\t. = $link;/" "$here/kernel/kernel.ld" >"$tmp/kernel.ld"
grep -q "^	\. = $link;" "$tmp/kernel.ld" || { echo "splashos: cannot set the link address in kernel.ld" >&2; exit 1; }
${CROSS}gcc -nostdlib -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,--gc-sections \
	-Wl,-T,"$tmp/kernel.ld" "${objs[@]}" -o "$tmp/splashos.elf" -lgcc
${CROSS}objcopy -O binary "$tmp/splashos.elf" "$tmp/splashos.img"
# The loader only accepts an arm64 Image: check the header we meant to write.
python3 "$here/../scripts/check-arm64-image.py" "$tmp/splashos.img"
cp "$tmp/splashos.elf" "${out%.img}.elf"
mv "$tmp/splashos.img" "$out"
apps=$(${CROSS}nm "${out%.img}.elf" | awk '$3 ~ /_main$/ && $2 == "T" {sub(/_main$/, "", $3); print $3}' |
	grep -vx -e kernel -e secondary | sort | tr '\n' ' ')
echo "splashos: built $out ($(stat -c %s "$out") bytes; apps: ${apps})"
if [ -n "$cpio_out" ]; then
	mkdir -p "$(dirname "$cpio_out")"
	# newc, names relative to splashos/inputs, in a stable order
	(cd "$here/inputs" && find . -type f ! -name '.*' | LC_ALL=C sort | cpio --quiet -o -H newc) >"$tmp/inputs.cpio"
	mv "$tmp/inputs.cpio" "$cpio_out"
	echo "splashos: built $cpio_out ($(stat -c %s "$cpio_out") bytes)"
fi
