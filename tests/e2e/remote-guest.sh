#!/bin/sh
# Run inside a guest by tests/run.py (section e2e) through guest-run, whose
# vgcd has no device of its own: --executor remote:tcp:... passes the calls
# on to another vgcd (or, with remote:A+B, to several as one driver).  The
# guest sees an ordinary /dev/vgc0.
#   remote-guest.sh BUILD [NAME PROGRAM...]
# runs the PROGRAMs (paths under BUILD/tests), reported as NAME_<program>;
# by default a few of every kind, as "remote".
b=${1:-build}
name=remote
progs="integration/test_device integration/test_memcpy integration/test_managed
       kernels/test_kernels runtime/rt_api_static"
if [ $# -gt 2 ]; then
    name=$2
    shift 2
    progs="$*"
fi
result() { echo "E2E-RESULT $1 $2"; }

for t in $progs; do
    [ -x "$b/tests/$t" ] || { result "${name}_$(basename $t)" skip; continue; }
    VGC_ITEST_QUIET=1 "$b/tests/$t" > /tmp/x.log 2>&1
    rc=$?
    [ $rc -ne 0 ] && tail -5 /tmp/x.log
    result "${name}_$(basename $t)" $rc
done
