#!/usr/bin/env bash
# Installs what Mirrorball needs to build, run and test, idempotently.
# Host packages come from Debian; the arm64 guest pieces are fetched by fetch-guest.sh.
set -euo pipefail
PKGS=(gcc make gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-system-arm
      libfdt-dev libinih-dev libcmocka-dev python3-pytest device-tree-compiler
      cpio kmod zstd xz-utils pkg-config
      debootstrap qemu-user-static binfmt-support e2fsprogs   # the guest root filesystem
      gnuplot-nox)                                            # the benches' plots
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture to dpkg (for the guest kernel and busybox)"
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  echo "setup: apt-get update"
  $SUDO apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
