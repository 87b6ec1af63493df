#!/usr/bin/env bash
# make demo: start vgcd (the GPU if this host has one, else the cpu
# executor), run an unmodified driver-API program through the libcuda shim
# over a unix socket, stop vgcd; then the same program inside a VM, through
# the vhost-user-gpu-compute-pci device (QEMU from make qemu, TCG guest).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tmp=$(mktemp -d /tmp/vgc-demo.XXXXXX)
trap 'kill $vgcd 2>/dev/null; wait $vgcd 2>/dev/null; rm -rf "$tmp"' EXIT

"$build/host-backend/vgcd" --listen "unix:$tmp/vgcd.sock" --device-memory 4G 2>"$tmp/vgcd.log" &
vgcd=$!
for _ in $(seq 100); do [ -S "$tmp/vgcd.sock" ] && break; sleep 0.05; done
sed 's/^/[vgcd] /' "$tmp/vgcd.log"
echo "running $build/tests/demo/vgc-demo with the shim (VGC_SERVER=unix:$tmp/vgcd.sock)"
LD_LIBRARY_PATH="$build/guest-driver/libcuda" VGC_SERVER="unix:$tmp/vgcd.sock" \
    "$build/tests/demo/vgc-demo"

qemu=$(cat "$build/qemu-path" 2>/dev/null || true)
if [ -z "$qemu" ] || [ ! -x "$qemu" ]; then
    echo "no QEMU with the device (make qemu): skipping the VM part of the demo"
    exit 0
fi
echo
echo "the same program inside a VM: /dev/vgc0 -> virtqueue -> vgcd --listen vhost-user"
tests/e2e/guest-run --qemu "$qemu" --vgcd "$build/host-backend/vgcd" \
    --shim "$build/guest-driver/libcuda" -- "$build/tests/demo/vgc-demo" 4
