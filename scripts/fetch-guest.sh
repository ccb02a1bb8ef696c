#!/usr/bin/env bash
# Fetches the guest pieces from Debian (arm64 cloud kernel, busybox-static) into a cache and
# produces build/guest/{vmlinuz,initrd.img,kernel.version}. Idempotent: a re-run with
# nothing new to do only asks apt-cache which versions are current (about a second).
# Versions are resolved at run time; the mirror comes from the machine's apt configuration.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MB_CACHE:-$HOME/.cache/mirrorball}
OUT=$ROOT/build/guest
mkdir -p "$CACHE/debs" "$OUT"
say() { echo "fetch-guest: $*"; }

# One apt-cache call (each costs ~1 s here, as the image disables apt's binary cache; keep one
# in our cache). The metapackage pins the versioned image package that holds the kernel.
# apt-get update only when apt does not know the arm64 packages yet (fresh machine).
show() { apt-cache -o Dir::Cache::pkgcache="$CACHE/pkgcache.bin" show --no-all-versions \
           linux-image-cloud-arm64:arm64 busybox-static:arm64 2>/dev/null; }
INFO=$(show) || { say "apt-get update"; apt-get update -qq; INFO=$(show); }
read -r KPKG KV BV < <(awk -v RS= '
  /^Package: linux-image-cloud-arm64\n/ {
    match($0, /Depends: linux-image-[0-9][^ ,]* \(= [^)]*\)/); d = substr($0, RSTART + 9, RLENGTH - 10)
    split(d, a, / \(= /); k = a[1]; kv = a[2] }
  /^Package: busybox-static\n/ { match($0, /\nVersion: [^\n]*/); bv = substr($0, RSTART + 10, RLENGTH - 10) }
  END { print k, kv, bv }' <<<"$INFO")
[ -n "$KPKG" ] && [ -n "$BV" ] || { say "cannot resolve linux-image-cloud-arm64 / busybox-static"; exit 1; }

# fetch PKG VERSION -> prints the extraction directory; downloads and extracts only when missing.
fetch() {
  local pkg=$1 v=$2 deb dir=$CACHE/x/${1}_$2
  if [ ! -e "$dir/.extracted" ]; then
    deb=$CACHE/debs/${pkg}_${v/:/%3a}_arm64.deb        # apt-get download's file name
    if [ ! -s "$deb" ]; then
      say "downloading $pkg $v" >&2
      # As root apt downloads as user _apt, who cannot write our cache: stay root, no warning.
      (cd "$CACHE/debs" && { apt-get download -qq -o APT::Sandbox::User=root "$pkg:arm64=$v" ||
        { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root "$pkg:arm64=$v"; }; }) >&2
    fi
    say "extracting $(basename "$deb")" >&2
    rm -rf "$dir"; mkdir -p "$dir"; dpkg-deb -x "$deb" "$dir"; touch "$dir/.extracted"
  fi
  echo "$dir"
}
KDIR=$(fetch "$KPKG" "$KV"); BDIR=$(fetch busybox-static "$BV")
KVER=$(ls "$KDIR/lib/modules"); MODDIR=$KDIR/lib/modules/$KVER
# The .deb ships no modules.dep (its postinst runs depmod); make it here, from the host's kmod.
[ -s "$MODDIR/modules.dep" ] || { say "depmod $KVER"; depmod -b "$KDIR" -F "$KDIR/boot/System.map-$KVER" "$KVER"; }

# Inputs that, when changed, force rebuilding: package versions and our own scripts.
STAMP="$KPKG $(basename "$KDIR") $(basename "$BDIR")"
old=$(cat "$OUT/.inputs" 2>/dev/null || true)

if [ "$old" != "$STAMP" ] || [ ! -s "$OUT/vmlinuz" ]; then
  src=$KDIR/boot/vmlinuz-$KVER
  # Debian's arm64 vmlinuz is a raw (EFI-stub) Image; should a future one be compressed,
  # decompress it, because the monitor loads a raw Image.
  case $(od -An -tx1 -N4 "$src" | tr -d ' ') in
    1f8b*)  say "vmlinuz is gzip'd: decompressing"; gzip -dc "$src" >"$OUT/vmlinuz.tmp" ;;
    28b52ffd) say "vmlinuz is zstd'd: decompressing"; zstd -qdc "$src" >"$OUT/vmlinuz.tmp" ;;
    *) cp "$src" "$OUT/vmlinuz.tmp" ;;
  esac
  [ "$(dd if="$OUT/vmlinuz.tmp" bs=1 skip=56 count=4 2>/dev/null | od -An -c | tr -d ' ')" = ARMd ] ||
    { say "vmlinuz has no arm64 Image magic at byte 56"; exit 1; }
  mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"; echo "$KVER" >"$OUT/kernel.version"
  say "vmlinuz: $KVER, $(stat -c %s "$OUT/vmlinuz") bytes"
fi

INIT=$ROOT/guest-patches/initramfs/init MK=$ROOT/scripts/mkinitramfs.sh
if [ "$old" != "$STAMP" ] || [ ! -s "$OUT/initrd.img" ] ||
   [ "$INIT" -nt "$OUT/initrd.img" ] || [ "$MK" -nt "$OUT/initrd.img" ]; then
  "$MK" "$MODDIR" "$BDIR/bin/busybox" "$INIT" "$OUT/initrd.img"
fi
echo "$STAMP" >"$OUT/.inputs"
say "up to date: build/guest/{vmlinuz,initrd.img,kernel.version} ($KVER)"
