/*
 * control.h - vgcd's control socket (vgcd --control PATH), which vgcctl
 * and the libvirt hook talk to.  The protocol is in docs/operations.md.
 *
 * The control socket lives in the daemon's poll loop: the loop asks for
 * the fds to watch (vgcd_control_pollfds), polls, and hands the results
 * back (vgcd_control_dispatch).  Nothing here blocks: a client that sends
 * half a line or reads nothing holds one of VGCD_CONTROL_MAX_CLIENTS
 * connections, never the daemon.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_CONTROL_H
#define VGCD_CONTROL_H

#include <poll.h>

struct vgcd;
struct vgcd_control;

/* Control connections served at once; one more is told so and closed. */
#define VGCD_CONTROL_MAX_CLIENTS 16
/* A command line, newline excluded; a longer one ends its connection. */
#define VGCD_CONTROL_LINE_MAX 4096
/* Most pollfds vgcd_control_pollfds fills. */
#define VGCD_CONTROL_POLLFDS (1 + VGCD_CONTROL_MAX_CLIENTS)

/*
 * Listen on the unix socket @path, mode 0600 (its directory is created,
 * mode 0755, when it does not exist).  A stale socket file is replaced; one
 * a running daemon still answers on is not.  Returns the control socket,
 * or NULL with *err a malloc()ed message.
 */
struct vgcd_control *vgcd_control_open(const char *path, char **err);

/*
 * Fill @pfd (room for VGCD_CONTROL_POLLFDS) with what to poll for.
 * Returns how many entries it filled.
 */
int vgcd_control_pollfds(struct vgcd_control *c, struct pollfd *pfd);

/*
 * Serve what poll() said about the @n entries vgcd_control_pollfds filled
 * in @pfd: accept, read commands and run them on @d, write replies.
 * Commands may add and remove listeners of @d.
 */
void vgcd_control_dispatch(struct vgcd_control *c, struct vgcd *d,
                           const struct pollfd *pfd, int n);

/*
 * In a forked worker: close the control fds, leave the socket file alone
 * (it is the daemon's), free @c.
 */
void vgcd_control_forget(struct vgcd_control *c);

/* At shutdown: close every connection, remove the socket file, free @c. */
void vgcd_control_close(struct vgcd_control *c);

#endif /* VGCD_CONTROL_H */
