#!/usr/bin/env bash
# QEMU's vhost-user-gpu-compute-pci device without a guest: it is listed,
# a missing or crashing backend is a clear error (never an abort), it
# realizes against a scripted backend and picks up a restarted backend.
# Exit 0 = pass.
#
#   tests/e2e/test_qemu_device.sh [QEMU]
#
# QEMU: the argument, else $QEMU, else build/qemu-path (make qemu), else
# hw/build-qemu.sh is run (a full QEMU build the first time).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fake="$root/tests/e2e/fake_vhost_user.py"
QEMU=${1:-${QEMU:-}}
if [ -z "$QEMU" ] && [ -x "$(cat "$root/build/qemu-path" 2>/dev/null)" ]; then
    QEMU=$(cat "$root/build/qemu-path")
fi
if [ -z "$QEMU" ]; then
    QEMU=$("$root/hw/build-qemu.sh" | tail -n1) || { echo "FAIL: cannot build QEMU"; exit 1; }
fi

tmp=$(mktemp -d /tmp/vgc-qemu-test.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=1; }

# Common options: no firmware run, no display; -S keeps the CPU stopped
# (devices are realized all the same).
QOPTS=(-machine q35 -accel tcg -m 256 -nodefaults -display none -S
       -object memory-backend-memfd,id=mem,size=256M,share=on
       -machine memory-backend=mem)

# run_qemu NAME ARGS...: run QEMU to completion (10 s at most), keep its
# status in $rc and its stderr in $tmp/NAME.err
run_qemu() {
    local name=$1; shift
    timeout -s KILL 20 "$QEMU" "${QOPTS[@]}" "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
}

# An error exit, not a signal (abort = 134, timeout kill = 137).
check_clean_error() {
    local name=$1 want=$2
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
        fail "$name: exit status $rc, want a plain error exit"; sed 's/^/     | /' "$tmp/$name.err"
    elif grep -qiE 'assert|abort|core dumped' "$tmp/$name.err"; then
        fail "$name: assertion/abort"; sed 's/^/     | /' "$tmp/$name.err"
    elif ! grep -qE "$want" "$tmp/$name.err"; then
        fail "$name: message does not match /$want/"; sed 's/^/     | /' "$tmp/$name.err"
    else
        pass "$name: exit $rc: $(head -1 "$tmp/$name.err")"
    fi
}

# qmp SOCKET CMD-JSON...: run QMP commands, print each "return" as JSON
qmp() {
    python3 - "$@" <<'PY'
import json, socket, sys, time
path = sys.argv[1]
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("no QMP socket")
f = s.makefile("rw")
def cmd(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
json.loads(f.readline())
cmd({"execute": "qmp_capabilities"})
for c in sys.argv[2:]:
    r = cmd(json.loads(c))
    if "error" in r:
        sys.exit("QMP error: %s" % r["error"])
    print(json.dumps(r["return"]))
PY
}

# wait_for FILE REGEX COUNT SECONDS
wait_for() {
    local i n
    for ((i = 0; i < $4 * 10; i++)); do
        n=$(grep -cE "$2" "$1" 2>/dev/null)
        [ "${n:-0}" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

echo "# QEMU: $QEMU"

# (b) the device is listed, with its properties
if "$QEMU" -device help 2>&1 | grep -q '"vhost-user-gpu-compute-pci"'; then
    pass "listed by -device help"
else
    fail "vhost-user-gpu-compute-pci not in -device help"
fi
props=$("$QEMU" -device vhost-user-gpu-compute-pci,help 2>&1)
for p in chardev num-queues queue-size; do
    grep -q "^  $p=" <<<"$props" || fail "property $p missing"
done
pass "properties chardev, num-queues, queue-size"

# (c) no backend: the socket path does not exist
run_qemu nobackend -chardev socket,id=c,path=/nonexistent \
    -device vhost-user-gpu-compute-pci,chardev=c
check_clean_error nobackend "Failed to connect|No such file"

run_qemu nochardev -device vhost-user-gpu-compute-pci
check_clean_error nochardev "chardev is mandatory"

# (d) a backend that accepts and closes at once
python3 "$fake" --socket "$tmp/close.sock" --mode close --log "$tmp/close.log" &
pids+=($!)
wait_for "$tmp/close.log" listening 1 5
run_qemu closing -chardev socket,id=c,path="$tmp/close.sock" \
    -device vhost-user-gpu-compute-pci,chardev=c
check_clean_error closing "vhost-user-gpu-compute"

# a backend with fewer queues than asked for
python3 "$fake" --socket "$tmp/cfg.sock" --mode config --log "$tmp/cfg.log" &
pids+=($!)
wait_for "$tmp/cfg.log" listening 1 5
run_qemu queues -chardev socket,id=c,path="$tmp/cfg.sock" \
    -device vhost-user-gpu-compute-pci,chardev=c,num-queues=64
check_clean_error queues "queues supported by the backend"
run_qemu qsize -chardev socket,id=c,path="$tmp/cfg.sock" \
    -device vhost-user-gpu-compute-pci,chardev=c,queue-size=100
check_clean_error qsize "queue-size must be a power of 2"

# realize against the scripted backend, then restart the backend:
# reconnect=1 picks it up (the fake sees a second handshake)
: >"$tmp/cfg.log"
timeout -s KILL 60 "$QEMU" "${QOPTS[@]}" -qmp unix:"$tmp/qmp.sock",server=on,wait=off \
    -chardev socket,id=c,path="$tmp/cfg.sock",reconnect=1 \
    -device vhost-user-gpu-compute-pci,id=vgc,chardev=c,num-queues=2,addr=0x5 \
    </dev/null >"$tmp/run.out" 2>"$tmp/run.err" &
qpid=$!
pids+=($qpid)
if ! wait_for "$tmp/cfg.log" "req GET_CONFIG" 1 10; then
    fail "realize: the backend saw no GET_CONFIG"
elif ! pci=$(qmp "$tmp/qmp.sock" '{"execute":"query-pci"}'); then
    fail "realize: QMP query-pci failed"
elif python3 -c '
import json, sys
devs = [d for b in json.loads(sys.argv[1]) for d in b["devices"]]
ok = [d for d in devs if d["id"]["vendor"] == 0x1af4 and d["id"]["device"] == 0x1079
      and d["slot"] == 5 and d["class_info"]["class"] == 0x0b40]
sys.exit(0 if ok else 1)' "$pci"; then
    pass "realized: PCI 1af4:1079 class 0b40 at slot 5"
else
    fail "realize: no 1af4:1079 in query-pci"
fi
if st=$(qmp "$tmp/qmp.sock" \
        '{"execute":"x-query-virtio-status","arguments":{"path":"/machine/peripheral/vgc/virtio-backend"}}'); then
    grep -q '"device-id": 57' <<<"$st" && pass "x-query-virtio-status: device-id 57" ||
        fail "x-query-virtio-status: $st"
else
    fail "x-query-virtio-status failed"
fi

kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null
python3 "$fake" --socket "$tmp/cfg.sock" --mode config --log "$tmp/cfg.log" &
pids+=($!)
if wait_for "$tmp/cfg.log" "req GET_CONFIG" 2 15 && kill -0 "$qpid" 2>/dev/null; then
    pass "reconnect: a restarted backend was picked up"
else
    fail "reconnect: no second handshake"; sed 's/^/     | /' "$tmp/run.err"
fi
qmp "$tmp/qmp.sock" '{"execute":"quit"}' >/dev/null
wait "$qpid"; rc=$?
if [ "$rc" -eq 0 ] && ! grep -qiE 'assert|abort' "$tmp/run.err"; then
    pass "quit: exit 0"
else
    fail "quit: exit $rc"; sed 's/^/     | /' "$tmp/run.err"
fi

# with reconnect=N a missing backend is waited for
rm -f "$tmp/late.sock"
timeout -s KILL 60 "$QEMU" "${QOPTS[@]}" -qmp unix:"$tmp/qmp2.sock",server=on,wait=off \
    -chardev socket,id=c,path="$tmp/late.sock",reconnect=1 \
    -device vhost-user-gpu-compute-pci,chardev=c \
    </dev/null >"$tmp/late.out" 2>"$tmp/late.err" &
qpid=$!
pids+=($qpid)
sleep 2
if kill -0 "$qpid" 2>/dev/null; then
    python3 "$fake" --socket "$tmp/late.sock" --mode config --log "$tmp/late.log" &
    pids+=($!)
    if wait_for "$tmp/late.log" "req GET_CONFIG" 1 15 &&
       qmp "$tmp/qmp2.sock" '{"execute":"quit"}' >/dev/null && wait "$qpid"; then
        pass "reconnect=1 waits for a backend that starts late"
    else
        fail "late backend"; sed 's/^/     | /' "$tmp/late.err"
    fi
else
    fail "reconnect=1 without a backend: QEMU exited"; sed 's/^/     | /' "$tmp/late.err"
fi

# the real backend, when it is built: the device realizes against it
vgcd="$root/build/host-backend/vgcd"
# The text first, then the match: grep -q ends at its first match, and
# under pipefail vgcd's SIGPIPE on the rest of a long --help would read as
# "no vhost-user support".
if [ -x "$vgcd" ] && grep -q 'vhost-user:' <<<"$("$vgcd" --help 2>&1)"; then
    "$vgcd" --listen vhost-user:"$tmp/vgcd.sock" --executor cpu >"$tmp/vgcd.log" 2>&1 &
    pids+=($!)
    for ((i = 0; i < 50; i++)); do [ -S "$tmp/vgcd.sock" ] && break; sleep 0.1; done
    timeout -s KILL 60 "$QEMU" "${QOPTS[@]}" -qmp unix:"$tmp/qmp3.sock",server=on,wait=off \
        -chardev socket,id=c,path="$tmp/vgcd.sock" \
        -device vhost-user-gpu-compute-pci,id=vgc,chardev=c \
        </dev/null >"$tmp/vgcd-qemu.out" 2>"$tmp/vgcd-qemu.err" &
    qpid=$!
    pids+=($qpid)
    if st=$(qmp "$tmp/qmp3.sock" \
            '{"execute":"x-query-virtio-status","arguments":{"path":"/machine/peripheral/vgc/virtio-backend"}}') &&
       grep -q '"device-id": 57' <<<"$st" &&
       qmp "$tmp/qmp3.sock" '{"execute":"quit"}' >/dev/null && wait "$qpid"; then
        pass "realized against vgcd --listen vhost-user:PATH"
    else
        fail "vgcd: device did not realize"
        sed 's/^/     | /' "$tmp/vgcd-qemu.err" "$tmp/vgcd.log"
    fi
else
    echo "skip vgcd without vhost-user support: no realize against the real backend"
fi

if [ "$failed" -ne 0 ]; then
    echo "test_qemu_device: FAILED"
    exit 1
fi
echo "test_qemu_device: passed"
