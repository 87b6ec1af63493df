#!/bin/sh
# Run inside a guest by tests/run.py (section e2e) through guest-run: the
# numba-cuda kernel checks of tests/runtime/rt_python.py, now over
# /dev/vgc0, with nvJitLink hidden (tests/runtime/without-nvjitlink.sh) so
# that numba links PTX through cuLink* and the cpu executor can run it.
# Usage: numba-guest.sh PYTHON (the test venv's interpreter).
# One result line, "E2E-RESULT numba_kernels 0|N|skip"; exits 0 or 1.
py=$1
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/../runtime/without-nvjitlink.sh" "$py" "$here/../runtime/rt_python.py" \
    numba-kernels > /tmp/numba.log 2>&1
rc=$?
grep -E '^(ok|not ok) - |^# [0-9]+ failed|without-nvjitlink:' /tmp/numba.log
if [ $rc -eq 77 ]; then
    echo "E2E-RESULT numba_kernels skip"
    exit 0
fi
[ $rc -ne 0 ] && tail -20 /tmp/numba.log
echo "E2E-RESULT numba_kernels $rc"
[ $rc -eq 0 ]
