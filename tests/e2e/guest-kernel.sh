#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest-kernel.sh - fetch Debian's 6.1 cloud kernel for test guests, without
# installing it on the host.
#
#   tests/e2e/guest-kernel.sh            download (once), extract, print paths
#   eval "$(tests/e2e/guest-kernel.sh)"  sets the variables below
#
# Prints, one per line (shell-quoted):
#   VGC_KVER=6.1.0-<abi>-cloud-amd64     the kernel release (uname -r)
#   VGC_VMLINUZ=<path>                   the bootable kernel image
#   VGC_MODULES=<path>                   lib/modules/<ver> of the guest
#   VGC_KROOT=<path>                     the extracted prefix (depmod -b)
#   VGC_KDIR=<path>                      headers: make -C $VGC_KDIR M=... modules
#
# The result lives in $VGC_CACHE/guest-kernel-<ver>/ (VGC_CACHE defaults to
# /var/cache/virtio-gpu-compute).  A finished cache is reused without apt;
# VGC_KERNEL_ABI=<n> pins the ABI (default: what linux-image-cloud-amd64
# depends on).  Progress goes to stderr, only the paths to stdout.

set -euo pipefail

CACHE=${VGC_CACHE:-/var/cache/virtio-gpu-compute}

log() { echo "guest-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

find_abi()
{
	local dep

	if [ -n "${VGC_KERNEL_ABI:-}" ]; then
		echo "$VGC_KERNEL_ABI"
		return
	fi
	# A finished cache answers without apt (offline, fast).
	dep=$(ls -d "$CACHE"/guest-kernel-6.1.0-*-cloud-amd64/.done 2>/dev/null |
	      sed -n 's|.*/guest-kernel-6\.1\.0-\([0-9]*\)-cloud-amd64/\.done|\1|p' |
	      sort -n | tail -n1)
	if [ -n "$dep" ]; then
		echo "$dep"
		return
	fi
	dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	      sed -n 's/.*Depends: linux-image-6\.1\.0-\([0-9]*\)-cloud-amd64$/\1/p' |
	      head -n1)
	if [ -z "$dep" ]; then
		log "linux-image-cloud-amd64 unknown to apt-cache; running apt-get update"
		apt-get update -qq >&2 || true
		dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		      sed -n 's/.*Depends: linux-image-6\.1\.0-\([0-9]*\)-cloud-amd64$/\1/p' |
		      head -n1)
	fi
	[ -n "$dep" ] || die "cannot find the 6.1 cloud kernel ABI (set VGC_KERNEL_ABI)"
	echo "$dep"
}

ABI=$(find_abi)
KVER=6.1.0-$ABI-cloud-amd64
DIR=$CACHE/guest-kernel-$KVER
ROOT=$DIR/root
KDIR=$ROOT/usr/src/linux-headers-$KVER
COMMON=$ROOT/usr/src/linux-headers-6.1.0-$ABI-common

if [ ! -e "$DIR/.done" ]; then
	command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"
	mkdir -p "$DIR/debs"
	PKGS="linux-image-$KVER linux-headers-$KVER linux-headers-6.1.0-$ABI-common linux-kbuild-6.1"
	(
		cd "$DIR/debs"
		for p in $PKGS; do
			ls "${p}"_*.deb >/dev/null 2>&1 && continue
			log "downloading $p"
			apt-get download -q -o APT::Sandbox::User=root "$p" >&2
		done
	)
	# linux-kbuild-6.1 is not versioned by ABI: keep the newest one.
	rm -rf "$ROOT.tmp"
	mkdir -p "$ROOT.tmp"
	for deb in "$DIR"/debs/*.deb; do
		log "extracting $(basename "$deb")"
		dpkg-deb -x "$deb" "$ROOT.tmp"
	done
	# The flavour's Makefile includes the common one by absolute path.
	sed -i "s|^include /usr/src/linux-headers-6.1.0-$ABI-common/|include $COMMON/|" \
		"$ROOT.tmp/usr/src/linux-headers-$KVER/Makefile"
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
	[ -f "$ROOT/boot/vmlinuz-$KVER" ] || die "no vmlinuz in linux-image-$KVER"
	[ -d "$ROOT/lib/modules/$KVER/kernel" ] || die "no modules in linux-image-$KVER"
	touch "$DIR/.done"
fi

# The headers may have been extracted under another VGC_CACHE and copied.
if ! grep -q "^include $COMMON/" "$KDIR/Makefile"; then
	sed -i "s|^include .*/usr/src/linux-headers-6.1.0-$ABI-common/|include $COMMON/|" \
		"$KDIR/Makefile"
fi

printf 'VGC_KVER=%q\n' "$KVER"
printf 'VGC_VMLINUZ=%q\n' "$ROOT/boot/vmlinuz-$KVER"
printf 'VGC_MODULES=%q\n' "$ROOT/lib/modules/$KVER"
printf 'VGC_KROOT=%q\n' "$ROOT"
printf 'VGC_KDIR=%q\n' "$KDIR"
