#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In a libvirt guest (tests/libvirt/libvirt_tests.py), booted as
# tests/e2e/guest-run boots its guests (same kernel, initramfs and INIT):
#   guest.sh BUILD with-device   the device is in the domain XML
#   guest.sh BUILD hotplug       vgcctl attach / detach / attach again
# One "E2E-RESULT name rc" line per check; "E2E-WAIT name" hands over to
# the host, which answers by creating $VGC_SYNC/name (tests/e2e/e2e-lib.sh).
. "$(dirname "$0")/../e2e/e2e-lib.sh"
b=$1

programs() {
    for t in test_device test_memset; do
        VGC_ITEST_QUIET=1 "$b/tests/integration/$t" > /tmp/$t.log 2>&1
        rc=$?
        [ $rc -ne 0 ] && tail -5 /tmp/$t.log
        result "$1_$t" $rc
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

case $2 in
with-device)
    [ -e /dev/vgc0 ]; result boot_dev_present $?
    programs boot
    # vgcctl close: the VM's worker ends, QEMU finds no backend; the reset
    # device holds new requests (guest-driver/kmod/README.md) ...
    e2e_wait close || exit 1
    VGC_ITEST_QUIET=1 "$b/tests/integration/test_device" > /tmp/held.log 2>&1 &
    held=$!
    sleep 3
    kill -0 $held 2>/dev/null; result closed_calls_wait $?
    # ... until vgcd listens again: QEMU reconnects and they are served.
    e2e_wait relisten || exit 1
    n=0
    while kill -0 $held 2>/dev/null; do
        n=$((n + 1)); [ $n -ge 300 ] && { kill -9 $held; break; }
        sleep 0.1
    done
    wait $held
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/held.log
    result relisten_held_call_served $rc
    VGC_ITEST_QUIET=1 "$b/tests/integration/test_memset" > /tmp/again.log 2>&1
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/again.log
    result relisten_test_memset $rc
    e2e_wait done 300
    ;;
hotplug)
    [ ! -e /dev/vgc0 ]; result boot_without_device $?
    e2e_wait attach || exit 1
    wait_dev present; result attach_driver_binds $?
    programs attach
    e2e_wait detach || exit 1
    wait_dev absent; result detach_removes_dev $?
    e2e_wait reattach || exit 1
    wait_dev present; result reattach_driver_binds $?
    programs reattach
    e2e_wait done 300
    ;;
*)
    echo "guest.sh: unknown mode $2"; exit 2 ;;
esac
