#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Host side of tests/e2e/hotplug-guest.sh (guest-run --hotplug
# --host-script): plug the device into the spare root port over QMP,
# unplug it, plug it again.
. "$(dirname "$0")/e2e-lib.sh"
set -e
qmp="$(dirname "$0")/qmp.py $VGC_QMP0"

plug() {
    $qmp '{"execute": "chardev-add", "arguments": {"id": "vgcchr", "backend":
            {"type": "socket", "data": {"server": false, "reconnect": 1,
             "addr": {"type": "unix", "data": {"path": "'"$VGC_SOCK0"'"}}}}}}' \
         '{"execute": "device_add", "arguments": {"driver": "vhost-user-gpu-compute-pci",
            "id": "vgc", "bus": "vgcport", "chardev": "vgcchr"}}' > /dev/null
}

host_wait plug
plug
echo "plugged"
host_go plug
host_wait unplug
$qmp '{"execute": "device_del", "arguments": {"id": "vgc"}}' event:DEVICE_DELETED \
     '{"execute": "chardev-remove", "arguments": {"id": "vgcchr"}}' > /dev/null
echo "unplugged"
host_go unplug
host_wait replug
plug
echo "plugged again"
host_go replug
