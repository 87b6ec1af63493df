/*
 * listen.h - the daemon's listening sockets: unix:PATH and tcp:HOST:PORT.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_LISTEN_H
#define VGCD_LISTEN_H

#include <stddef.h>

#include "pool.h"

struct vgcd_listener {
    int fd;
    int is_unix;
    int is_vhost_user;      /* a VM's QEMU connects here: vhost-user protocol */
    char name[160];         /* as given: "unix:/run/vgc.sock" */
    char path[108];         /* unix: the socket file, removed on close */
};

/* Open @addr (unix:PATH, tcp:HOST:PORT, vhost-user:PATH); on failure returns -1 with *err a malloc()ed message. */
int vgcd_listener_open(struct vgcd_listener *l, const char *addr, char **err);
/*
 * Accept one client; describes it in @peer, and in @tenant who it is: its
 * uid on a unix socket, its IP address over TCP (VGC_TENANT_NONE when the
 * kernel does not say).  Returns the fd or -1.
 */
int vgcd_listener_accept(struct vgcd_listener *l, char *peer, size_t peer_size,
                         struct vgc_tenant *tenant);
void vgcd_listener_close(struct vgcd_listener *l);

#endif /* VGCD_LISTEN_H */
