#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (tests/run.py, section e2e):
#   guest-run --host-script tests/e2e/reset-host.sh -- sh tests/e2e/reset-guest.sh COPY_LOOP
# (b) processes killed in the middle of a 64 MiB copy: device memory comes
#     back, a new process works;
# (c) the VM's vgcd worker killed while a copy runs (reset-host.sh kills
#     it): the program fails cleanly, a file opened before fails with
#     ENODEV, the driver resets the device, and after vgcd restarts a new
#     program works.
. "$(dirname "$0")/e2e-lib.sh"
cl=$1

# wait_line FILE TEXT [SECONDS]
wait_line() {
    n=$(( ${3:-30} * 10 ))
    until grep -q "$2" "$1" 2>/dev/null; do
        n=$((n - 1)); [ $n -le 0 ] && return 1; sleep 0.1
    done
}

# wait_exit PID SECONDS: its status in $rc, 124 (and killed) if it hung
wait_exit() {
    n=$(( $2 * 10 ))
    while kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/$1/stat)" != Z ]; do
        n=$((n - 1))
        if [ $n -le 0 ]; then kill -9 "$1"; wait "$1"; rc=124; return; fi
        sleep 0.1
    done
    wait "$1"; rc=$?
}

# ---- (b) killed in the middle of a 64 MiB copy, five times ----------------
before=$("$cl" info)
echo "before: $before"
rc=0
for i in 1 2 3 4 5; do
    "$cl" > /tmp/copy.out 2>&1 &
    pid=$!
    wait_line /tmp/copy.out copying || { cat /tmp/copy.out; rc=1; }
    sleep 0.$((i % 5 + 1))          # 0.1..0.5 s into the copies
    kill -9 $pid
    wait $pid 2>/dev/null
done
result kill_copy_start $rc
# The host ends the killed sessions asynchronously: give it a few seconds.
n=0
while after=$("$cl" info) && [ "$after" != "$before" ] && [ $n -lt 20 ]; do
    n=$((n + 1)); sleep 0.5
done
echo "after: $after"
[ "$after" = "$before" ]; result kill_copy_no_leak $?
"$cl" 2 > /tmp/copy.out 2>&1; rc=$?
[ $rc -ne 0 ] && cat /tmp/copy.out
result kill_copy_next_process $rc

# ---- (c) the VM's worker killed while a copy runs ------------------------
rm -f /tmp/go
"$cl" hold /tmp/go > /tmp/hold.out 2>&1 &
hold=$!
"$cl" > /tmp/copy.out 2>&1 &
pid=$!
wait_line /tmp/hold.out holding && wait_line /tmp/copy.out copying || cat /tmp/copy.out /tmp/hold.out
e2e_wait worker_kill || exit 1        # the host kills the worker
wait_exit $pid 30
echo "copy_loop: $(tail -1 /tmp/copy.out), exit $rc"
[ $rc -eq 3 ]; result worker_kill_copy_fails_cleanly $?
touch /tmp/go
wait_exit $hold 30
echo "file opened before: $(tail -1 /tmp/hold.out), exit $rc"
[ $rc -eq 3 ]; result worker_kill_open_file_fails $?
e2e_wait vgcd_restart || exit 1       # the host restarts vgcd
n=0
until "$cl" 2 > /tmp/copy.out 2>&1; do
    n=$((n + 1)); [ $n -ge 20 ] && { cat /tmp/copy.out; break; }
    sleep 0.5
done
result worker_kill_device_works_again $([ $n -lt 20 ]; echo $?)
dmesg | grep -E "vgc|virtio_gpu_compute" | tail -5
if dmesg | grep -E -i "BUG:|Oops|WARNING:|general protection|leak" > /tmp/dmesg.bad; then
    cat /tmp/dmesg.bad
    result reset_kernel_log 1
else
    result reset_kernel_log 0
fi
