/*
 * listen.h - the daemon's listening sockets: unix:PATH, tcp:HOST:PORT and
 * vhost-user:PATH, each with the options that are the policy of every
 * tenant arriving through it:
 *
 *     ADDRESS[,memory=SIZE][,gpus=N][,name=NAME][,priority=N][,share=N][,window=FROM-TO]
 *
 * (docs/pool.md).  Options start at the first comma, so a socket path
 * cannot contain one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_LISTEN_H
#define VGCD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

struct vgcd_listener {
    int fd;
    int is_unix;
    int is_vhost_user;      /* a VM's QEMU connects here: vhost-user protocol */
    char name[160];         /* as given: "unix:/run/vgc.sock" */
    char path[108];         /* unix: the socket file, removed on close */
    struct vgc_tenant policy;   /* listener (a serial unique in this daemon)
                                   and the options of its tenants */
};

/*
 * Open @addr (unix:PATH, tcp:HOST:PORT, vhost-user:PATH, each optionally
 * followed by ,memory=SIZE ,gpus=N ,name=NAME ,priority=N ,share=N
 * ,window=FROM-TO; priority defaults to VGC_POOL_PRIORITY_DEFAULT, share to
 * 0, not given) and parse its options into
 * l->policy.  gpus= is checked against 1..VGC_POOL_MAX_DEVICES only: the
 * caller compares it with the devices it has.  On failure returns -1 with
 * *err a malloc()ed message, and nothing is left open.
 */
int vgcd_listener_open(struct vgcd_listener *l, const char *addr, char **err);
/*
 * Whether the options of open listener @l can be served by a pool of
 * @ndevices devices (gpus= at most that).  Returns 0, or -1 with *err a
 * malloc()ed message; the caller closes @l.
 */
int vgcd_listener_check(const struct vgcd_listener *l, int ndevices, char **err);
/*
 * Accept one client; describes it in @peer, and in @tenant who it is: its
 * uid on a unix socket, its IP address over TCP (VGC_TENANT_NONE when the
 * kernel does not say), with the listener's policy.  Returns the fd or -1.
 */
int vgcd_listener_accept(struct vgcd_listener *l, char *peer, size_t peer_size,
                         struct vgc_tenant *tenant);
void vgcd_listener_close(struct vgcd_listener *l);

/* Read a size such as 4G, 512M, 65536 or 1GiB (nonzero) into *out. */
bool vgcd_parse_size(const char *s, uint64_t *out);
/*
 * Read a daily window HH:MM[:SS]-HH:MM[:SS] (local time; the end may come
 * before the start: it wraps midnight) into seconds after midnight.  The
 * two times must differ.  False, *@from and *@to untouched, when it does
 * not read.
 */
bool vgcd_parse_window(const char *s, uint32_t *from, uint32_t *to);

#endif /* VGCD_LISTEN_H */
