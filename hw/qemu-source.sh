#!/usr/bin/env bash
# Print the path of Debian's QEMU source tree, fetching and unpacking it into
# the cache first if needed.  Nothing is vendored: the source comes from
# Debian's archive through apt (a deb-src entry is added when none exists).
#
#   hw/qemu-source.sh            -> /var/cache/virtio-gpu-compute/qemu-7.2+dfsg-.../src
#
# VGC_CACHE overrides the cache directory.
set -euo pipefail

cache=${VGC_CACHE:-/var/cache/virtio-gpu-compute}
mkdir -p "$cache"

log() { echo "qemu-source: $*" >&2; }

ensure_deb_src() {
    if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
       grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
        return
    fi
    log "adding a deb-src entry for Debian's archive"
    # Same URIs, suites, components and key as the first deb entry.
    awk 'BEGIN { RS=""; } /Types: deb/ && !done { sub(/Types: deb/, "Types: deb-src"); print; done=1 }' \
        /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/vgc-deb-src.sources
    apt-get update -qq
}

version=$(apt-cache showsrc qemu 2>/dev/null | awk '/^Version:/ { print $2; exit }' || true)
if [ -z "$version" ]; then
    ensure_deb_src
    version=$(apt-cache showsrc qemu | awk '/^Version:/ { print $2; exit }')
fi
[ -n "$version" ] || { log "no QEMU source package in apt"; exit 1; }
# The epoch ("1:") is left out of the path: colons upset PATH-like variables.
dir="$cache/qemu-${version#*:}"
if [ ! -f "$dir/src/.unpacked" ]; then
    command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
    log "fetching qemu $version source"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && apt-get source -qq "qemu=$version" >/dev/null 2>&1)
    src=$(find "$dir.tmp" -maxdepth 1 -mindepth 1 -type d -name 'qemu-*' | head -1)
    [ -n "$src" ] || { log "apt-get source qemu failed"; exit 1; }
    mkdir -p "$dir"
    rm -rf "$dir/src"
    mv "$src" "$dir/src"
    rm -rf "$dir.tmp"
    touch "$dir/src/.unpacked"
fi
echo "$dir/src"
