#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (tests/run.py, section e2e):
#   guest-run --hotplug --host-script tests/e2e/hotplug-host.sh -- sh tests/e2e/hotplug-guest.sh COPY_LOOP
# (a) the device hot-plugged into the running guest (QMP device_add): the
#     driver binds and CUDA works; unplugged (device_del) while a program
#     holds /dev/vgc0 open: its calls fail cleanly, no oops; plugged again:
#     CUDA works again.
. "$(dirname "$0")/e2e-lib.sh"
cl=$1

wait_line() {
    n=$(( ${3:-30} * 10 ))
    until grep -q "$2" "$1" 2>/dev/null; do
        n=$((n - 1)); [ $n -le 0 ] && return 1; sleep 0.1
    done
}

# wait_dev present|absent: /dev/vgc0 appears or goes (30 s)
wait_dev() {
    n=300
    while :; do
        if [ -e /dev/vgc0 ]; then [ $1 = present ] && return 0
        else [ $1 = absent ] && return 0; fi
        n=$((n - 1)); [ $n -le 0 ] && return 1; sleep 0.1
    done
}

[ ! -e /dev/vgc0 ]; result hotplug_boots_without_device $?
e2e_wait plug || exit 1                 # the host plugs the device
wait_dev present; result hotplug_driver_binds $?
"$cl" 2 > /tmp/copy.out 2>&1; rc=$?
[ $rc -ne 0 ] && cat /tmp/copy.out
result hotplug_cuda_works $rc

rm -f /tmp/go
"$cl" hold /tmp/go > /tmp/hold.out 2>&1 &
hold=$!
wait_line /tmp/hold.out holding || cat /tmp/hold.out
exec 3<>/dev/vgc0                       # and a bare open file
e2e_wait unplug || exit 1               # the host unplugs it
wait_dev absent; result unplug_removes_dev $?
touch /tmp/go
wait $hold; rc=$?
echo "program holding /dev/vgc0: $(tail -1 /tmp/hold.out), exit $rc"
[ $rc -eq 3 ]; result unplug_open_file_fails_cleanly $?
exec 3>&-

e2e_wait replug || exit 1               # and plugs it again
wait_dev present; result replug_driver_binds $?
"$cl" 2 > /tmp/copy.out 2>&1; rc=$?
[ $rc -ne 0 ] && cat /tmp/copy.out
result replug_cuda_works $rc
dmesg | grep -E "vgc|virtio_gpu_compute|pciehp" | tail -8
if dmesg | grep -E -i "BUG:|Oops|WARNING:|general protection|leak" > /tmp/dmesg.bad; then
    cat /tmp/dmesg.bad
    result hotplug_kernel_log 1
else
    result hotplug_kernel_log 0
fi
