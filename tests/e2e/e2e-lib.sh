# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the e2e scripts, in the guest and on the host (--host-script).
#
# Synchronisation: the guest prints "E2E-WAIT NAME" and waits until the
# host creates $VGC_SYNC/NAME (a host directory guest-run shares into every
# guest); the host script waits for the line in the console log
# ($VGC_CONSOLE0), does its part, then creates the file.

result() { echo "E2E-RESULT $1 $2"; }

# guest: e2e_wait NAME [SECONDS]: tell the host, wait for its go
e2e_wait() {
    echo "E2E-WAIT $1"
    _n=$(( ${2:-120} * 5 ))
    while [ ! -e "$VGC_SYNC/$1" ]; do
        _n=$((_n - 1))
        [ $_n -le 0 ] && { echo "e2e_wait $1: no go from the host"; return 1; }
        sleep 0.2
    done
}

# host: host_wait NAME [SECONDS] [CONSOLE]: wait for the guest's E2E-WAIT NAME
host_wait() {
    _n=$(( ${2:-120} * 5 ))
    until grep -qx "E2E-WAIT $1" "${3:-$VGC_CONSOLE0}"; do
        _n=$((_n - 1))
        [ $_n -le 0 ] && { echo "host_wait $1: the guest never got there"; return 1; }
        sleep 0.2
    done
}

# host: host_go NAME: let the guest go on
host_go() { touch "$VGC_SYNC/$1"; }
