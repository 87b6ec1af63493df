#!/bin/sh
# Run inside a guest by tests/run.py (section e2e) through guest-run, whose
# vgcd has no device of its own: --executor remote:tcp:... passes the calls
# on to another vgcd.  The guest sees an ordinary /dev/vgc0.
b=${1:-build}
result() { echo "E2E-RESULT $1 $2"; }

for t in integration/test_device integration/test_memcpy integration/test_managed \
         kernels/test_kernels runtime/rt_api_static; do
    [ -x "$b/tests/$t" ] || { result "remote_$(basename $t)" skip; continue; }
    VGC_ITEST_QUIET=1 "$b/tests/$t" > /tmp/x.log 2>&1
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/x.log
    result "remote_$(basename $t)" $rc
done
