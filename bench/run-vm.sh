#!/usr/bin/env bash
# run-vm.sh - vgc_bench over the socket and inside a guest, in one run.
#
# Usage: bench/run-vm.sh [BUILD_DIR] [vgc_bench args...]
#
# First bench/run.sh (unix socket and TCP loopback on this host), then the
# same vgc_bench inside a TCG guest, where the shim goes through /dev/vgc0,
# the vhost-user-gpu-compute-pci device and vgcd --listen vhost-user.  In the
# guest the "in-process" column is the cpu executor inside the guest, so each
# path's overhead factor is measured against work done on the same CPU.
# TCG figures are for ratios only: the guest's CPU is emulated.
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$(cd "$1" && pwd)
    shift
fi
qemu=$(cat "$build/qemu-path" 2>/dev/null || true)
[ -x "$qemu" ] || { echo "run-vm.sh: no QEMU with the device: make qemu" >&2; exit 2; }

echo "== socket paths (this host)"
"$here/run.sh" "$build" "$@"
echo
echo "== virtio path (TCG guest: /dev/vgc0 -> vhost-user -> vgcd)"
"$root/tests/e2e/guest-run" --qemu "$qemu" --mem 2G --timeout 900 \
    --vgcd "$build/host-backend/vgcd" --shim "$build/guest-driver/libcuda" \
    -- "$build/bench/vgc_bench" --label virtio-tcg "$@"
