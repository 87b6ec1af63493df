/*
 * vhost_session.c - a guest session's process: frames in and out of guest RAM.
 *
 * With vgcd --swap a session is swapped out like a socket worker (swap.c):
 * between chains, when its VM's worker asks.  While it is out the VM's
 * worker holds its chains back (vhost_worker.c), so it never waits on a
 * session that is out.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/virtio_gpu_compute.h>

#include "vgc_wire.h"
#include "vgc_opcodes.h"
#include "frame.h"
#include "worker.h"
#include "vhost_session.h"

/* ---- moving bytes: shared with the VM worker (vhost_worker.c) ---------- */

size_t vgcd_iov_size(const struct iovec *iov, unsigned n)
{
    size_t total = 0;

    for (unsigned i = 0; i < n; i++) {
        total += iov[i].iov_len;
    }
    return total;
}

bool vgcd_iov_read(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len)
{
    uint8_t *out = buf;

    for (unsigned i = 0; i < n && len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t take = iov[i].iov_len - offset < len ? iov[i].iov_len - offset : len;
        memcpy(out, (uint8_t *)iov[i].iov_base + offset, take);
        out += take;
        len -= take;
        offset = 0;
    }
    return len == 0;
}

bool vgcd_iov_write(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
                    size_t len)
{
    const uint8_t *in = buf;

    for (unsigned i = 0; i < n && len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t take = iov[i].iov_len - offset < len ? iov[i].iov_len - offset : len;
        memcpy((uint8_t *)iov[i].iov_base + offset, in, take);
        in += take;
        len -= take;
        offset = 0;
    }
    return len == 0;
}

int vgcd_fd_read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int vgcd_fd_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Run the frames in @buf (@len bytes, already copied out of guest RAM):
 * any number of async frames and at most one synchronous frame, last.
 * Returns the status for the chain; a synchronous frame's reply is left in
 * @w and its header in @rh.
 */
static uint32_t session_run(struct vgcd_session *s, const uint8_t *buf, size_t len,
                            uint8_t *out, struct vgc_wr *w, struct vgc_hdr *rh,
                            bool *replied)
{
    size_t pos = 0;

    *replied = false;
    if (len == 0) {
        return VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
    }
    while (pos < len) {
        struct vgc_hdr h;
        enum vgcd_frame_result fr;

        if (len - pos < sizeof(h) || *replied) {
            vgcd_violation(s, "a partial frame, or a frame after the synchronous one");
            return VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
        }
        memcpy(&h, buf + pos, sizeof(h));
        if (vgcd_frame_check_header(&h) || h.length > len - pos - sizeof(h)) {
            vgcd_violation(s, vgcd_frame_check_header(&h) ?: "a frame longer than its chain");
            return VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
        }
        /* Start the reply where its bulk bytes are cache-line aligned. */
        vgc_wr_init(w, out + (64 - vgc_reply_data_offset(h.opcode) % 64) % 64,
                    VGC_MAX_PAYLOAD);
        vgcd_worker_busy(true);
        fr = vgcd_frame_process(s, &h, buf + pos + sizeof(h), w);
        vgcd_worker_busy(false);
        pos += sizeof(h) + h.length;
        if (fr == VGCD_FRAME_VIOLATION) {
            return VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
        }
        if (fr == VGCD_FRAME_REPLY || fr == VGCD_FRAME_CLOSE) {
            *rh = h;
            rh->version = VGC_PROTOCOL_VERSION;
            rh->flags = VGC_F_REPLY | (s->output_pending ? VGC_F_OUTPUT : 0);
            rh->length = (uint32_t)w->len;
            *replied = true;
        }
    }
    return VIRTIO_GPU_COMPUTE_S_OK;
}

int vgcd_vhost_session_serve(int fd, struct vgc_executor *exec, struct vgc_pool *pool,
                             const char *peer)
{
    struct vgcd_session *s = vgcd_session_new(exec, peer);
    struct iovec *seg = calloc(VHOST_SESSION_MAX_SEGMENTS, sizeof(*seg));
    uint8_t *frames = malloc(VHOST_SESSION_MAX_FRAMES);
    uint8_t *out = aligned_alloc(4096, VGC_MAX_PAYLOAD + 4096);
    bool swap;
    int ret = 0;

    if (!s || !seg || !frames || !out) {
        fprintf(stderr, "vgcd: %s: out of memory for a new session\n", peer);
        ret = -1;
        goto out;
    }
    s->pool = pool;
    s->client_fd = fd;
    swap = vgcd_swap_init(pool, exec) >= 0;
    vgcd_worker_watch(fd, peer);
    for (;;) {
        struct vhost_session_call call;
        struct vhost_session_done done = { VIRTIO_GPU_COMPUTE_S_OK, 0 };
        uint64_t out_len, in_room;
        struct vgc_hdr rh;
        struct vgc_wr w;
        bool replied;

        /* Between chains: the safe point to swap out at (swap.c). */
        if (vgcd_swap_due(s) && vgcd_swap_cycle(s) < 0) {
            ret = -1;
            break;
        }
        if (swap) {
            int wr = vgcd_swap_wait(fd);

            if (wr == 0) {
                continue;
            }
            if (wr < 0) {
                break;
            }
        }
        if (vgcd_fd_read_all(fd, &call, sizeof(call)) < 0) {
            break;                      /* the VM worker closed the session */
        }
        if (call.nout + (uint64_t)call.nin > VHOST_SESSION_MAX_SEGMENTS ||
            vgcd_fd_read_all(fd, seg, sizeof(*seg) * (call.nout + call.nin)) < 0) {
            fprintf(stderr, "vgcd: %s: bad call from the VM worker\n", peer);
            ret = -1;
            break;
        }
        out_len = vgcd_iov_size(seg, call.nout);
        in_room = vgcd_iov_size(seg + call.nout, call.nin);
        if (out_len < call.out_skip || in_room < call.in_skip ||
            out_len - call.out_skip > VHOST_SESSION_MAX_FRAMES) {
            done.status = VIRTIO_GPU_COMPUTE_S_BAD_REQUEST;
            vgcd_violation(s, "a chain too large");
        } else {
            size_t len = (size_t)(out_len - call.out_skip);
            /* Copied once, then checked and run: the guest cannot change a
             * frame under us. */
            vgcd_iov_read(seg, call.nout, call.out_skip, frames, len);
            done.status = session_run(s, frames, len, out, &w, &rh, &replied);
            if (done.status == VIRTIO_GPU_COMPUTE_S_OK && replied) {
                if (sizeof(rh) + w.len > in_room - call.in_skip) {
                    done.status = VIRTIO_GPU_COMPUTE_S_NO_SPACE;
                } else {
                    vgcd_iov_write(seg + call.nout, call.nin, call.in_skip, &rh, sizeof(rh));
                    vgcd_iov_write(seg + call.nout, call.nin, call.in_skip + sizeof(rh),
                                   w.buf, w.len);
                    done.reply_len = (uint32_t)(sizeof(rh) + w.len);
                }
            }
        }
        if (vgcd_fd_write_all(fd, &done, sizeof(done)) < 0) {
            break;
        }
        if (done.status == VIRTIO_GPU_COMPUTE_S_BAD_REQUEST) {
            fprintf(stderr, "vgcd: %s: closing: %s\n", peer,
                    s->violation ? s->violation : "malformed chain");
            ret = -1;
            break;
        }
    }
out:
    free(seg);
    free(frames);
    free(out);
    vgcd_session_free(s);
    return ret;
}
