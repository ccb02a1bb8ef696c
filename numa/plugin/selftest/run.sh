#!/usr/bin/env bash
# The NUMA plugin's self-test on real QEMU (a few seconds): 4 nodes x 64 MiB, each backed by
# a fresh shared file, two tiny bare-metal programs (boot.S in node 0, node2.S in node 2).
# Checks: the plugin loads; its data-address mapping agrees with the instruction-side one
# on every literal load (nodes 0 and 2); code running in the machine reads the header the
# plugin wrote into node 3's memory ('Y'), and does not without the plugin ('N'); the
# accesses of a WFE wait loop are counted apart (wait_accesses), not as accesses.
# usage: numa/plugin/selftest/run.sh [PLUGIN.so]   (default build/numa-plugin.so)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=${1:-$here/../../../build/numa-plugin.so}
CROSS=${CROSS:-aarch64-linux-gnu-}
work=$(mktemp -d /tmp/numa-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
${CROSS}as -o "$work/boot.o" "$here/boot.S"
${CROSS}ld -Ttext=0x40200000 -o "$work/boot.elf" "$work/boot.o"
${CROSS}as -o "$work/node2.o" "$here/node2.S"
${CROSS}ld -Ttext=0x48200000 -o "$work/node2.elf" "$work/node2.o"
${CROSS}objcopy -O binary "$work/node2.elf" "$work/node2.bin"
run() {   # run [plugin args]: fresh node files every time (a stale header looks like a plugin)
	local a=(-M virt,virtualization=on,gic-version=3,secure=off -cpu cortex-a72 -smp 4 -m 256M)
	for k in 0 1 2 3; do
		rm -f "$work/node$k"
		truncate -s 64M "$work/node$k"
		a+=(-object "memory-backend-file,id=m$k,size=64M,share=on,mem-path=$work/node$k"
		    -numa "node,nodeid=$k,cpus=$k,memdev=m$k")
	done
	timeout 30 qemu-system-aarch64 "${a[@]}" -kernel "$work/boot.elf" \
		-device "loader,file=$work/node2.bin,addr=0x48200000" -nographic -nodefaults \
		-display none -monitor none -serial stdio "$@" </dev/null 2>&1
}
fail=0
out=$(run -plugin "$plugin,nodes=4,node_size=64M,memdir=$work,out=$work/numa.json")
echo "$out" | sed 's/^/  /'
grep -qx 'Y' <<<"$out" || { echo "FAIL: the machine did not see the plugin's header"; fail=1; }
grep -q 'address check: 5 literal loads agreed, 0 disagreed' <<<"$out" ||
	{ echo "FAIL: address check"; fail=1; }
grep -q '"addr_check_ok": 5, "addr_check_bad": 0' "$work/numa.json" || { echo "FAIL: numa.json"; fail=1; }
# 1000 turns, each a load and a fetched line; the rest of the program makes a few dozen
acc=$(sed -n 's/.*"accesses": \([0-9]*\), "wait_accesses": \([0-9]*\),.*/\1 \2/p' "$work/numa.json")
read -r a w <<<"${acc:-x x}"
if [[ $a =~ ^[0-9]+$ && $w =~ ^[0-9]+$ ]] && (( w >= 2000 && a < 200 )); then
	echo "  wait loop: $w wait accesses, $a others"
else
	echo "FAIL: the WFE loop's accesses: '$acc' (want >= 2000 wait, < 200 others)"; fail=1
fi
out=$(run)
grep -qx 'N' <<<"$out" || { echo "FAIL: without the plugin the header is there: $out"; fail=1; }
[ $fail = 0 ] && echo "numa plugin selftest: 1 passed, 0 failed" || echo "numa plugin selftest: 0 passed, 1 failed"
exit $fail
