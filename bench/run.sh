#!/usr/bin/env bash
# run.sh - run vgc_bench against a private vgcd, over a unix socket and TCP.
#
# Usage: bench/run.sh [BUILD_DIR] [vgc_bench args...]
#   BUILD_DIR defaults to ./build; further arguments (--quick, --json FILE)
#   go to every vgc_bench run.  With --json FILE, the unix run writes
#   FILE.unix.json and the tcp run FILE.tcp.json.
#
# Starts vgcd --executor cpu --device-memory 2G on a temporary unix socket
# and a free TCP loopback port, runs vgc_bench --label unix and --label tcp,
# stops vgcd (SIGTERM, then waits), and exits non-zero if anything failed.
#
# SPDX-License-Identifier: GPL-2.0-or-later
set -u

build=$(dirname "$0")/../build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$1
    shift
fi
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run.sh: no build directory '$build'" >&2; exit 2; }

vgcd=$build/host-backend/vgcd
bench=$build/bench/vgc_bench
shim_dir=$build/guest-driver/libcuda
for f in "$vgcd" "$bench" "$shim_dir/libcuda.so.1"; do
    if [ ! -e "$f" ]; then
        echo "run.sh: $f is missing: build first (ninja -C $build)" >&2
        exit 2
    fi
done

# --json FILE becomes FILE.LABEL.json per run; everything else passes through.
args=()
json=
while [ $# -gt 0 ]; do
    case $1 in
    --json) json=${2:?--json needs a file}; shift 2 ;;
    --json=*) json=${1#--json=}; shift ;;
    *) args+=("$1"); shift ;;
    esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgc-bench.XXXXXX") || exit 2
sock=$tmp/vgcd.sock
log=$tmp/vgcd.log
pid=

stop_vgcd() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null
    fi
    pid=
}

cleanup() {
    stop_vgcd
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

tcp_ready() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The port may be taken between free_port and vgcd's bind: retry.
port=
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    rm -f "$sock"
    "$vgcd" --executor cpu --device-memory 2G \
        --listen "unix:$sock" --listen "tcp:127.0.0.1:$port" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        if [ -S "$sock" ] && tcp_ready "$port"; then
            break 2
        fi
        sleep 0.05
    done
    stop_vgcd
    echo "run.sh: vgcd did not start on port $port (attempt $attempt):" >&2
    sed 's/^/  /' "$log" >&2
done
if [ -z "$pid" ]; then
    echo "run.sh: giving up" >&2
    exit 1
fi

status=0
for t in unix tcp; do
    case $t in
    unix) server=unix:$sock ;;
    tcp) server=tcp:127.0.0.1:$port ;;
    esac
    extra=()
    if [ -n "$json" ]; then
        extra=(--json "${json%.json}.$t.json")
    fi
    echo "== $t: VGC_SERVER=$server"
    if ! LD_LIBRARY_PATH=$shim_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} VGC_SERVER=$server \
        "$bench" --label "$t" ${args[@]+"${args[@]}"} ${extra[@]+"${extra[@]}"}; then
        echo "run.sh: vgc_bench --label $t failed" >&2
        status=1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: vgcd died; its log:" >&2
        sed 's/^/  /' "$log" >&2
        pid=
        exit 1
    fi
    echo
done

stop_vgcd
if grep -q "closing:" "$log"; then
    echo "run.sh: vgcd closed a client on error; its log:" >&2
    sed 's/^/  /' "$log" >&2
    status=1
fi
exit $status
