#!/bin/sh
# Run inside each guest by tests/run.py (section e2e) through guest-run:
# the socket-path test programs, now over /dev/vgc0, one result line each,
# then a process killed in the middle of a 64 MiB copy, then the checks
# that the guest kernel and the device took it well.
b=${1:-build}
result() { echo "E2E-RESULT $1 $2"; }

for t in test_device test_context test_memcpy test_memset test_memory \
         test_streams_events test_errors test_isolation test_threads test_modules \
         test_procaddr test_link test_managed test_graph; do
    VGC_ITEST_QUIET=1 "$b/tests/integration/$t" > /tmp/$t.log 2>&1
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/$t.log
    result "$t" $rc
done
for t in kernels/test_kernels runtime/rt_api_static runtime/rt_api_shared \
         runtime/rt_managed_static runtime/rt_stream_static runtime/rt_graph_static; do
    [ -x "$b/tests/$t" ] || { result "$(basename $t)" skip; continue; }
    "$b/tests/$t" > /tmp/x.log 2>&1
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/x.log
    result "$(basename $t)" $rc
done

# NVML in the VM: a process holding 64 MiB is in vgc-smi's process table,
# with its pid in this guest, and is the only process there (another VM's
# are never shown).
if [ -x "$b/tests/runtime/rt_nvml_status" ] && [ -x "$b/guest-driver/tools/vgc-smi" ]; then
    rm -f /tmp/holdin && mkfifo /tmp/holdin
    "$b/tests/runtime/rt_nvml_status" hold 0 67108864 < /tmp/holdin > /tmp/hold.log 2>&1 &
    hold=$!
    exec 3> /tmp/holdin
    for i in $(seq 100); do grep -q '^holding' /tmp/hold.log && break; sleep 0.1; done
    hpid=$(awk '/^holding/ { print $2 }' /tmp/hold.log)
    LD_LIBRARY_PATH="$b/guest-driver/libnvml:$LD_LIBRARY_PATH" \
        "$b/guest-driver/tools/vgc-smi" > /tmp/smi.log 2>&1
    rows=$(sed -n '/Processes:/,$p' /tmp/smi.log | grep -c ' C  ')
    exec 3>&-
    wait $hold
    if [ -n "$hpid" ] && [ "$rows" = 1 ] &&
       grep -Eq "^\| +0 +N/A +N/A +$hpid +C +.* 64MiB \|$" /tmp/smi.log; then
        result nvml_processes 0
    else
        cat /tmp/hold.log /tmp/smi.log
        result nvml_processes 1
    fi
else
    result nvml_processes skip
fi

# A process killed mid-copy: its session ends on the host, nothing leaks
# into the next process, the guest kernel stays healthy.
VGC_ITEST_QUIET=1 "$b/tests/integration/test_memcpy" > /dev/null 2>&1 &
pid=$!
sleep 3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
VGC_ITEST_QUIET=1 "$b/tests/integration/test_device" > /tmp/after.log 2>&1
result after_kill $?
if dmesg | grep -E -i "BUG:|Oops|WARNING:|general protection" > /tmp/dmesg.bad; then
    cat /tmp/dmesg.bad
    result kernel_log 1
else
    result kernel_log 0
fi
