#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# private-libvirtd.sh STATE - a libvirtd of the tests' own (tests/run.py,
# section libvirt), run as
#     unshare --mount --propagation private private-libvirtd.sh STATE
# In its own mount namespace, libvirt's system directories are bind mounts
# of STATE/{etc,run,lib,log,cache}: its configuration, hooks, sockets,
# domains and logs are the test's, and the host's libvirt (if any) is not
# touched.  Clients reach it with qemu:///system?socket=STATE/run/libvirt-sock.
# The only traces on the host are the empty mount points it creates.
set -eu
state=$1
for d in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt \
         cache:/var/cache/libvirt; do
    src=$state/${d%%:*} dst=${d#*:}
    mkdir -p "$src" "$dst"
    mount --bind "$src" "$dst"
done
# Its pid file too (by default /run/libvirtd.pid, outside STATE).
exec /usr/sbin/libvirtd --pid-file /run/libvirt/libvirtd.pid
