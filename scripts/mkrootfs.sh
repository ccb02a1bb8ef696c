#!/usr/bin/env bash
# Builds build/guest/rootfs.ext4: a lean Debian arm64 root filesystem for disk-backed guests
# (boot with root=/dev/vda; the initramfs switch_roots into its /sbin/mb-init).
#   debootstrap --variant=minbase (the machine's release, the mirror from its apt
#   configuration), second stage run under qemu-user-static through binfmt_misc, the guest
#   kernel's modules (xz'd, depmod'ed), guest-patches/rootfs/ (mb-init as /sbin/mb-init,
#   poweroff as /usr/local/sbin/{poweroff,reboot,halt}); no docs, man pages, translations, apt
#   caches, gconv modules or Python; then mke2fs -d with about $MB_ROOTFS_FREE_MIB MiB free.
# Run after fetch-guest.sh (kernel version and modules come from its build/guest/.inputs).
# Skipped when up to date: build/guest/rootfs.stamp records the release, the package list,
# the kernel package and the hashes of this script and of guest-patches/rootfs/. The
# debootstrapped tree stays in build/guest/rootfs/, so a change to guest-patches/rootfs/ alone
# only remakes the image (seconds).
# MB_ROOTFS_REBUILD=1 forces a fresh debootstrap (e.g. to pick up Debian updates).
# Progress on stdout; everything else in build/guest/mkrootfs.log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MB_CACHE:-$HOME/.cache/mirrorball}
OUT=$ROOT/build/guest
TREE=$OUT/rootfs IMG=$OUT/rootfs.ext4 LOG=$OUT/mkrootfs.log
STAMPF=$OUT/rootfs.stamp TREE_STAMPF=$OUT/rootfs.tree-stamp
PATCHES=$ROOT/guest-patches/rootfs
INCLUDE=nfs-kernel-server,procps,iproute2,kmod
FREE_MIB=${MB_ROOTFS_FREE_MIB:-64}
T0=$SECONDS
say() { printf 'mkrootfs: [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { say "error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && exec sudo -E bash "$0" "$@"; die "needs root (debootstrap, chroot)"; }
read -r _ KDIRB BDIRB 2>/dev/null <"$OUT/.inputs" || die "no build/guest/.inputs: run scripts/fetch-guest.sh first"
KDIR=$CACHE/x/$KDIRB BUSYBOX=$CACHE/x/$BDIRB/bin/busybox
KVER=$(cat "$OUT/kernel.version") MODDIR=$KDIR/lib/modules/$(cat "$OUT/kernel.version")
[ -d "$MODDIR" ] && [ -x "$BUSYBOX" ] || die "guest kernel or busybox missing in $CACHE/x: run scripts/fetch-guest.sh"
. /etc/os-release; SUITE=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

# Stamps: the tree depends on the release, the packages, the kernel and this script; the image
# on the tree, guest-patches/rootfs/ and the free space asked for.
TREE_STAMP="suite=$SUITE include=$INCLUDE kernel=$KDIRB script=$(sha256sum <"$0" | cut -c1-16)"
STAMP="$TREE_STAMP patches=$(cd "$PATCHES" && sha256sum mb-init poweroff | sha256sum | cut -c1-16) free=${FREE_MIB}M"

# One build at a time (several engineers, several make runs); the second finds it up to date.
exec 9>"$OUT/.mkrootfs.lock"
flock -n 9 || { say "waiting for another mkrootfs to finish"; flock 9; }
if [ -z "${MB_ROOTFS_REBUILD:-}" ] && [ -s "$IMG" ] && [ "$(cat "$STAMPF" 2>/dev/null)" = "$STAMP" ]; then
  say "up to date: build/guest/rootfs.ext4 ($(( $(stat -c %s "$IMG") >> 20 )) MiB)"; exit 0
fi

# Never remove or image a tree with something mounted in it (the second stage mounts /proc
# and /sys inside); unmount, deepest first, on every exit.
umount_tree() {
  awk -v t="$TREE" '$2 == t || index($2, t "/") == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}
# A step runs in its own process group (setsid), so that an interrupted build stops all of it.
JOB=
cleanup() {
  if [ -n "$JOB" ]; then kill -TERM -- "-$JOB" 2>/dev/null && sleep 2; kill -KILL -- "-$JOB" 2>/dev/null || true; fi
  umount_tree
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run CMD...: output to the log; while it runs, every 20 s, its latest "I: ..." line.
run() {
  echo "=== $* ($(date -u '+%F %T'))" >>"$LOG"
  setsid "$@" >>"$LOG" 2>&1 </dev/null & JOB=$!
  local n=0
  while kill -0 "$JOB" 2>/dev/null; do
    sleep 1; n=$((n + 1))
    [ $((n % 20)) -ne 0 ] || say "  ... $(grep '^I: ' "$LOG" | tail -n 1 | cut -c4-90)"
  done
  wait "$JOB" || { local rc=$?; JOB=; tail -n 20 "$LOG" >&2; die "$1 failed (status $rc), see $LOG"; }
  JOB=
}

if [ -n "${MB_ROOTFS_REBUILD:-}" ] || [ "$(cat "$TREE_STAMPF" 2>/dev/null)" != "$TREE_STAMP" ] ||
   [ ! -x "$TREE/bin/sh" ]; then
  : >"$LOG"
  say "building build/guest/rootfs.ext4: Debian $SUITE arm64 minbase + $INCLUDE (takes minutes; log: build/guest/mkrootfs.log)"

  # The mirror: the machine's apt source for $SUITE main with Debian's arm64 packages.
  targets() { apt-get indextargets --format '$(SITE)' 'Target-Of: deb' 'Identifier: Packages' \
                'Origin: Debian' "Release: $SUITE" 'Component: main' 'Architecture: arm64' 2>/dev/null | head -n 1; }
  MIRROR=$(targets)
  [ -n "$MIRROR" ] || { say "apt-get update"; apt-get update -qq >>"$LOG" 2>&1; MIRROR=$(targets); }
  [ -n "$MIRROR" ] || die "no Debian $SUITE main arm64 source in apt's configuration (/etc/apt/sources.list{,.d}); run scripts/setup.sh"
  say "mirror (from apt's configuration): $MIRROR"

  # The second stage runs arm64 binaries: binfmt_misc must hand them to qemu-aarch64-static.
  BF=/proc/sys/fs/binfmt_misc
  [ -e "$BF/register" ] || mount -t binfmt_misc binfmt_misc "$BF" 2>>"$LOG" ||
    die "cannot mount binfmt_misc on $BF: arm64 binaries cannot run, so no second stage"
  if [ ! -e "$BF/qemu-aarch64" ]; then
    say "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 >>"$LOG" 2>&1 || true
  fi
  if [ ! -e "$BF/qemu-aarch64" ] && [ -r /usr/share/binfmts/qemu-aarch64 ]; then
    # By hand, from qemu-user-static's own description (binfmt-support's format).
    f() { awk -v k="$1" '$1 == k { print $2 }' /usr/share/binfmts/qemu-aarch64; }
    fl=; [ "$(f credentials)" = yes ] && fl=${fl}C; [ "$(f fix_binary)" = yes ] && fl=${fl}F
    [ "$(f preserve)" = yes ] && fl=${fl}P
    echo ":qemu-aarch64:M:$(f offset):$(f magic):$(f mask):$(f interpreter):$fl" >"$BF/register" 2>>"$LOG" || true
  fi
  [ -e "$BF/qemu-aarch64" ] && grep -qx enabled "$BF/qemu-aarch64" ||
    die "binfmt_misc has no enabled qemu-aarch64 handler (install qemu-user-static binfmt-support: scripts/setup.sh)"
  "$BUSYBOX" true 2>>"$LOG" || die "an arm64 binary does not run through binfmt_misc/qemu-aarch64; see $LOG"
  INTERP=$(awk '$1 == "interpreter" { print $2 }' "$BF/qemu-aarch64")
  FIXED=$(awk '$1 == "flags:" { print ($2 ~ /F/) ? 1 : "" }' "$BF/qemu-aarch64")

  umount_tree; rm -rf --one-file-system "$TREE" "$TREE_STAMPF"; mkdir -p "$CACHE/debootstrap"
  say "debootstrap, first stage: download and unpack"
  run debootstrap --foreign --arch=arm64 --variant=minbase --include="$INCLUDE" \
      --cache-dir="$CACHE/debootstrap" "$SUITE" "$TREE" "$MIRROR"
  # Without binfmt_misc's F flag the interpreter is opened inside the chroot: put it there.
  [ -n "$FIXED" ] || { mkdir -p "$TREE$(dirname "$INTERP")"; cp "$(readlink -f "$INTERP")" "$TREE$INTERP"; }
  chroot "$TREE" /bin/true 2>>"$LOG" || die "arm64 binaries do not run in the new tree (binfmt_misc); see $LOG"
  # No docs, man pages or translations, now (the second stage unpacks everything again
  # through dpkg) and for whatever is installed later.
  cat >"$TREE/etc/dpkg/dpkg.cfg.d/01-mirrorball-nodoc" <<'EOF'
# Mirrorball guest root (scripts/mkrootfs.sh): every MB is read by eight VMs under TCG.
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/lib/*/gconv/*.so
EOF
  say "debootstrap, second stage: configure under qemu-aarch64 (the slow part)"
  run chroot "$TREE" /debootstrap/debootstrap --second-stage
  # nfs-common depends on python3 only for its diagnostics (nfsiostat, mountstats,
  # nfsdclnts); Python is 30 MB of the tree. A stub package provides python3 so that dpkg's
  # state stays consistent; apt-get install python3 brings the real one back.
  say "replacing Python (30 MB; only nfs-common's diagnostics use it) by a stub package"
  mkdir -p "$TREE/tmp/stub/DEBIAN"
  printf '%s\n' 'Package: mirrorball-no-python3' 'Version: 1' 'Architecture: all' \
    'Maintainer: Mirrorball <mirrorball@localhost>' 'Provides: python3' 'Priority: optional' \
    'Section: misc' 'Description: Mirrorball guest root: stands in for python3' \
    ' nfs-common depends on python3 only for nfsiostat, mountstats and nfsdclnts; the guest' \
    ' root filesystem leaves Python out (apt-get install python3 brings it back).' \
    >"$TREE/tmp/stub/DEBIAN/control"
  dpkg-deb -Zxz --root-owner-group -b "$TREE/tmp/stub" "$TREE/tmp/stub.deb" >>"$LOG"
  run chroot "$TREE" dpkg -i /tmp/stub.deb
  run chroot "$TREE" dpkg --purge python3 python3-minimal python3.11 python3.11-minimal \
      libpython3-stdlib libpython3.11-stdlib libpython3.11-minimal media-types
  rm -rf "${TREE:?}/tmp/stub" "${TREE:?}/tmp/stub.deb" "${TREE:?}"/usr/lib/python3*
  umount_tree
  [ -n "$FIXED" ] || rm -f "$TREE$INTERP"

  say "configuring: hostname, hosts, kernel modules $KVER"
  echo mirrorball >"$TREE/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$TREE/etc/hosts"
  printf '# The initramfs mounts the root (root= on the kernel command line); mb-init the rest.\n' >"$TREE/etc/fstab"
  # bash's readline: no bracketed-paste escapes in the console logs.
  printf '$include /etc/inputrc\nset enable-bracketed-paste off\n' >"$TREE/root/.inputrc"
  rm -f "$TREE/etc/resolv.conf"                       # the build host's, not the guest's
  # The kernel's modules, xz'd (kmod reads them; a third of the size), depmod'ed for modprobe.
  rm -rf "$TREE/lib/modules/$KVER"; mkdir -p "$TREE/lib/modules"
  cp -a "$MODDIR" "$TREE/lib/modules/"
  rm -f "$TREE/lib/modules/$KVER"/{build,source}
  find "$TREE/lib/modules/$KVER" -name '*.ko' -print0 | xargs -0 -r -n 32 -P "$(nproc)" xz -q --check=crc32
  depmod -b "$TREE" -F "$KDIR/boot/System.map-$KVER" "$KVER" 2>>"$LOG"

  say "cleaning: apt caches and lists, docs, man pages, translations, gconv modules, logs"
  rm -rf "$TREE"/var/cache/apt/*.bin "$TREE"/var/cache/apt/archives/*.deb "$TREE"/var/lib/apt/lists/* \
         "$TREE"/usr/share/doc/* "$TREE"/usr/share/man/* "$TREE"/usr/share/info/* "$TREE"/usr/share/lintian \
         "$TREE"/var/cache/debconf/*-old "$TREE"/var/lib/dpkg/*-old "$TREE"/var/log/*.log \
         "$TREE"/var/log/apt/* "$TREE"/var/cache/ldconfig/aux-cache "$TREE"/tmp/* "$TREE"/root/.bash_history \
         "$TREE"/usr/lib/*/gconv/*.so
  find "$TREE/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  mkdir -p "$TREE/var/lib/apt/lists/partial"
  echo "$TREE_STAMP" >"$TREE_STAMPF"
fi

install -m 755 "$PATCHES/mb-init" "$TREE/sbin/mb-init"
for p in poweroff reboot halt; do install -m 755 "$PATCHES/poweroff" "$TREE/usr/local/sbin/$p"; done

# mke2fs -d: size = contents + metadata + FREE_MIB, corrected once from what mke2fs reports.
# 4 KiB blocks; inodes for the files there plus room; no reserved blocks (the free space is
# all usable); inode tables zeroed now, so no guest's ext4lazyinit writes them under TCG.
# A minimal 4 MiB journal: VMs are stopped and restarted without a clean unmount, and with a
# journal the next mount replays it instead of leaving a possibly inconsistent filesystem;
# the journal costs 4 MiB in the image (ext4's own default here would be 16 MiB).
NFILES=$(find "$TREE" -xdev | wc -l)
INODES=$(( (NFILES + NFILES / 4 + 8192 + 1023) / 1024 * 1024 ))
DATA_MIB=$(( $(du -sx --block-size=1M "$TREE" | cut -f1) ))
SIZE=$(( DATA_MIB + INODES * 256 / 1048576 + 4 + FREE_MIB + DATA_MIB / 50 + 4 ))
for try in 1 2 3; do
  rm -f "$IMG.tmp"
  echo "=== mke2fs ${SIZE} MiB, $INODES inodes" >>"$LOG"
  mke2fs -q -F -t ext4 -b 4096 -N "$INODES" -m 0 -J size=4 -L mb-root \
    -E lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0 -d "$TREE" "$IMG.tmp" "${SIZE}M" >>"$LOG" 2>&1 ||
    die "mke2fs failed, see $LOG"
  FREE=$(( $(dumpe2fs -h "$IMG.tmp" 2>/dev/null | awk -F: '/^Free blocks:/ { print $2 }') * 4 / 1024 ))
  DELTA=$(( FREE_MIB - FREE ))
  [ "${DELTA#-}" -gt 4 ] && [ "$try" -lt 3 ] || break
  SIZE=$(( SIZE + DELTA ))
done
e2fsck -fn "$IMG.tmp" >>"$LOG" 2>&1 || die "e2fsck finds the new image inconsistent, see $LOG"
mv "$IMG.tmp" "$IMG"
echo "$STAMP" >"$STAMPF"
say "built build/guest/rootfs.ext4: ${SIZE} MiB, ${FREE} MiB free, $NFILES files, kernel modules $KVER"
