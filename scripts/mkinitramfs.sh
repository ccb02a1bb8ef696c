#!/usr/bin/env bash
# Builds the small guest initramfs: static busybox, our /init, and the virtio modules the
# Debian cloud kernel needs for Mirrorball's devices (they are =m there), decompressed on the
# host and listed in dependency order so /init can insmod them without modprobe/depmod.
# ext4 and what it needs to mount a root disk (root= on the command line) are built into
# Debian's cloud kernel (ext4, jbd2, mbcache, crc16, crc32c): listed all the same, so a kernel
# that makes them modules still gets them; built-in ones are skipped quietly.
# Usage: mkinitramfs.sh MODDIR BUSYBOX INIT OUT   (MODDIR = .../lib/modules/<version>)
# MB_MODULES overrides the module list (space separated).
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 MODDIR BUSYBOX INIT OUT" >&2; exit 2; }
MODDIR=$1 BUSYBOX=$2 INIT=$3 OUT=$4
WANT=${MB_MODULES:-virtio_mmio virtio_blk virtio_net failover net_failover crc32c_generic crc16 mbcache jbd2 ext4}
ST=$(mktemp -d); trap 'rm -rf "$ST"' EXIT
mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,lib/modules}
install -m 755 "$BUSYBOX" "$ST/bin/busybox"; ln -s busybox "$ST/bin/sh"   # rest: --install at boot
install -m 755 "$INIT" "$ST/init"

# Each wanted module's deps (modules.dep lists the full closure, innermost last) in reverse,
# then the module itself, each once. One in modules.builtin is skipped; one in neither is absent.
touch "$ST/builtin"; [ -f "$MODDIR/modules.builtin" ] && cp "$MODDIR/modules.builtin" "$ST/builtin"
awk -v want="$WANT" '
  function base(p) { sub(/.*\//, "", p); sub(/\.ko(\.(xz|zst|gz))?$/, "", p); gsub(/-/, "_", p); return p }
  FILENAME ~ /builtin$/ { builtin[base($1)] = 1; next }
  { sub(/:$/, "", $1); n = base($1); path[n] = $1; deps[n] = ""
    for (i = NF; i >= 2; i--) deps[n] = deps[n] " " $i }
  END { k = split(want, w, " ")
    for (j = 1; j <= k; j++) { m = w[j]; gsub(/-/, "_", m)
      if (m in builtin) continue
      if (!(m in path)) { print "mkinitramfs: " m ": no module file and not built in" > "/dev/stderr"; continue }
      c = split(deps[m], d, " ")
      for (i = 1; i <= c; i++) { b = base(d[i]); if (!seen[b]++) print path[b] }
      if (!seen[m]++) print path[m] } }' "$ST/builtin" "$MODDIR/modules.dep" >"$ST/mods"
rm "$ST/builtin"
while read -r p; do
  b=$(basename "$p"); b=${b%%.ko*}.ko
  case $p in
    *.ko.xz)  xz -dc "$MODDIR/$p" ;;
    *.ko.zst) zstd -qdc "$MODDIR/$p" ;;
    *.ko.gz)  gzip -dc "$MODDIR/$p" ;;
    *)        cat "$MODDIR/$p" ;;
  esac >"$ST/lib/modules/$b"
  echo "$b" >>"$ST/lib/modules/load-order"
done <"$ST/mods"
rm "$ST/mods"; touch "$ST/lib/modules/load-order"

# newc, owned by root, sorted for a stable archive; gzip because every kernel can unpack it.
(cd "$ST" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) |
  gzip -9n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitramfs: $(basename "$OUT"): $(stat -c %s "$OUT") bytes, modules: $(tr '\n' ' ' <"$ST/lib/modules/load-order")"
