/*
 * vhost_session.h - a VM's guest session, served in guest memory.
 *
 * The VM worker forks one process per session after the VM's memory is
 * mapped, so a session process sees guest RAM at the same addresses.  For
 * each CALL the VM worker sends it the chain's segments (addresses already
 * checked against the memory table by libvhost-user); the session process
 * copies the frames out of guest RAM once (the structure is validated on
 * that copy, never re-read), runs them, and writes the reply frame straight
 * into the guest's buffers.  Nothing else crosses the socketpair.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_VHOST_SESSION_H
#define VGCD_VHOST_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "executor.h"

#define VHOST_SESSION_MAX_SEGMENTS 1024
/* A chain carries at most this many frame bytes: a full sync frame plus a
 * batch of async ones. */
#define VHOST_SESSION_MAX_FRAMES (2u * (VGC_MAX_PAYLOAD + 32u))

/* VM worker -> session: one CALL chain. */
struct vhost_session_call {
    uint32_t nout;          /* readable segments, then nin writable ones */
    uint32_t nin;
    uint64_t out_skip;      /* bytes of the request header to pass over */
    uint64_t in_skip;       /* bytes of the response header to leave */
};

/* Followed by nout + nin struct iovec: addresses of guest RAM as the VM
 * worker mapped it, which the session, its fork, sees at the same place. */

/* Session -> VM worker: the chain is done. */
struct vhost_session_done {
    uint32_t status;        /* enum virtio_gpu_compute_status */
    uint32_t reply_len;     /* bytes of reply frame written after in_skip */
};

/* Bytes in @n segments; copy @len bytes at @offset out of / into them
 * (false when they hold fewer). */
size_t vgcd_iov_size(const struct iovec *iov, unsigned n);
bool vgcd_iov_read(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len);
bool vgcd_iov_write(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
                    size_t len);
/* All of @n bytes or -1 (EINTR retried; no SIGPIPE). */
int vgcd_fd_read_all(int fd, void *buf, size_t n);
int vgcd_fd_write_all(int fd, const void *buf, size_t n);

struct vgc_pool;

/*
 * Serve calls arriving on @fd until the VM worker closes it.  @pool is
 * bound to this session's slot (NULL for none).
 * Returns 0 after an orderly end, -1 after a protocol violation (logged).
 */
int vgcd_vhost_session_serve(int fd, struct vgc_executor *exec, struct vgc_pool *pool,
                             const char *peer);

#endif /* VGCD_VHOST_SESSION_H */
