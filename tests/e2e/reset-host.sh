#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Host side of tests/e2e/reset-guest.sh (guest-run --host-script): kill the
# VM's vgcd worker with SIGKILL while the guest copies, then restart vgcd.
. "$(dirname "$0")/e2e-lib.sh"
set -e
host_wait worker_kill
worker=$(pgrep -P "$VGC_VGCD_PID")
[ -n "$worker" ] || { echo "no vgcd worker under $VGC_VGCD_PID"; exit 1; }
echo "killing the VM's worker $worker"
kill -9 $worker
host_go worker_kill
host_wait vgcd_restart
echo "vgcd restarted: pid $("$VGC_VGCD_RESTART")"
host_go vgcd_restart
