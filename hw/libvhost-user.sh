#!/usr/bin/env bash
# Build libvhost-user from Debian's QEMU source (the same tree the device is
# built into) and print the directory holding libvhost-user.a, then the
# directory holding libvhost-user.h, on one line.  Cached; takes seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$("$here/qemu-source.sh")
cache=$(dirname "$src")
build="$cache/libvhost-user"
if [ ! -f "$build/libvhost-user.a" ]; then
    command -v meson >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq meson ninja-build >/dev/null
    rm -rf "$build"
    meson setup "$build" "$src/subprojects/libvhost-user" >/dev/null
    ninja -C "$build" libvhost-user.a >/dev/null
fi
echo "$build $src/subprojects/libvhost-user"
