/*
 * socket_worker.c - serve one client over a connected stream socket.
 *
 * Frames are read whole (header, then at most VGC_MAX_PAYLOAD bytes) into
 * one buffer and answered from another, both allocated once per session.
 * Anything wrong with the stream itself ends this client only: the worker
 * logs why and returns; the daemon and other clients carry on.
 *
 * With vgcd --swap the worker may be asked to swap out (swap.c): it looks
 * before each frame, and while it waits for one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vgc_opcodes.h"
#include "frame.h"
#include "worker.h"

/*
 * A call can run for as long as its kernel does, and a kernel may never
 * return.  This thread watches the client's end: once it is gone, a worker
 * still inside a call ends itself, which stops whatever the call was doing
 * and frees all it held.  An idle worker reads the EOF itself.
 */
static atomic_bool worker_busy;

static void *worker_watch_peer(void *arg)
{
    struct pollfd p = { .fd = (int)(intptr_t)arg, .events = POLLRDHUP };

    while (poll(&p, 1, -1) < 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        if (p.revents & POLLNVAL) {
            return NULL;
        }
    }
    for (;;) {
        if (atomic_load(&worker_busy)) {
            fprintf(stderr, "vgcd: client gone during a call; ending its worker\n");
            _exit(3);
        }
        usleep(100 * 1000);
    }
    return NULL;
}

void vgcd_worker_watch(int fd, const char *peer)
{
    pthread_t watcher;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&watcher, &attr, worker_watch_peer, (void *)(intptr_t)fd) != 0) {
        fprintf(stderr, "vgcd: %s: cannot watch the client; a call that never "
                "returns will not be stopped\n", peer);
    }
    pthread_attr_destroy(&attr);
}

void vgcd_worker_busy(bool busy)
{
    atomic_store(&worker_busy, busy);
}

static int worker_write_full(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t w = writev(fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/*
 * Frames are read in bulk: a batch of small async frames arrives in one
 * read() instead of two per frame.  The buffer holds unparsed bytes in
 * [*pos, *end); make at least @need of them available, moving them to the
 * front only when the buffer's tail is too short (never once per frame).
 * With @swap, a wait for the client is also a wait for the owner's word
 * to swap out (vgcd_swap_wait).  Returns 1, 0 on a clean EOF with nothing
 * buffered, -1 on error or EOF inside a frame, 2 when woken by that word.
 */
static int worker_fill(int fd, bool swap, uint8_t *buf, size_t cap, size_t *pos,
                       size_t *end, size_t need)
{
    if (cap - *pos < need) {
        memmove(buf, buf + *pos, *end - *pos);
        *end -= *pos;
        *pos = 0;
    }
    while (*end - *pos < need) {
        ssize_t r;

        if (swap) {
            int w = vgcd_swap_wait(fd);

            if (w <= 0) {
                return w < 0 ? -1 : 2;
            }
        }
        r = read(fd, buf + *end, cap - *end);
        if (r == 0) {
            return *end == *pos ? 0 : -1;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        *end += (size_t)r;
    }
    return 1;
}

#define WORKER_READ_AHEAD (256u << 10)

/* worker_fill, swapping out when asked while it waits: -2 when the
 * process must end instead (swap.c logged why). */
static int worker_fill_or_swap(struct vgcd_session *s, int fd, bool swap, uint8_t *buf,
                               size_t cap, size_t *pos, size_t *end, size_t need)
{
    int rc;

    while ((rc = worker_fill(fd, swap, buf, cap, pos, end, need)) == 2) {
        s->call_buffered = *end > *pos;
        if (vgcd_swap_due(s) && vgcd_swap_cycle(s) < 0) {
            return -2;
        }
    }
    return rc;
}

int vgcd_worker_serve_socket(int fd, struct vgc_executor *exec, struct vgc_pool *pool,
                             const char *peer)
{
    struct vgcd_session *s = vgcd_session_new(exec, peer);
    size_t cap = sizeof(struct vgc_hdr) + VGC_MAX_PAYLOAD + WORKER_READ_AHEAD;
    uint8_t *in = malloc(cap);
    /* aligned_alloc wants a size that is a multiple of the alignment */
    uint8_t *out = aligned_alloc(4096, VGC_MAX_PAYLOAD + 4096);
    const char *why = NULL;
    size_t pos = 0, end = 0;
    bool swap;
    int ret = 0;

    if (!s || !in || !out) {
        fprintf(stderr, "vgcd: %s: out of memory for a new session\n", peer);
        ret = -1;
        goto out;
    }
    s->pool = pool;
    s->client_fd = fd;
    swap = vgcd_swap_init(pool, exec) >= 0;
    vgcd_worker_watch(fd, peer);
    for (;;) {
        struct vgc_hdr h, rh;
        struct vgc_wr w;
        uint8_t *reply;
        enum vgcd_frame_result fr;
        size_t frame_len;
        int rc;

        /* Between frames: the safe point to swap out at (swap.c). */
        s->call_buffered = end > pos;
        if (vgcd_swap_due(s) && vgcd_swap_cycle(s) < 0) {
            ret = -1;
            break;
        }
        rc = worker_fill_or_swap(s, fd, swap, in, cap, &pos, &end, sizeof(h));
        if (rc == -2) {
            ret = -1;
            break;
        }
        if (rc == 0) {
            break;                      /* client closed between frames */
        }
        if (rc < 0) {
            why = "connection broken inside a frame header";
            break;
        }
        memcpy(&h, in + pos, sizeof(h));
        why = vgcd_frame_check_header(&h);
        if (why) {
            break;
        }
        frame_len = sizeof(h) + h.length;
        rc = worker_fill_or_swap(s, fd, swap, in, cap, &pos, &end, frame_len);
        if (rc == -2) {
            ret = -1;
            break;
        }
        if (rc != 1) {
            why = "connection broken inside a frame payload";
            break;
        }
        /* Start the reply where its bulk bytes will be cache-line aligned. */
        reply = out + (64 - vgc_reply_data_offset(h.opcode) % 64) % 64;
        vgc_wr_init(&w, reply, VGC_MAX_PAYLOAD);
        vgcd_worker_busy(true);
        fr = vgcd_frame_process(s, &h, in + pos + sizeof(h), &w);
        vgcd_worker_busy(false);
        pos += frame_len;
        if (pos == end) {
            pos = end = 0;
        }
        if (fr == VGCD_FRAME_VIOLATION) {
            why = s->violation;
            break;
        }
        if (fr == VGCD_FRAME_NO_REPLY) {
            continue;
        }
        if (w.len) {
            struct iovec iov[2];
            rh = h;
            rh.version = VGC_PROTOCOL_VERSION;
            rh.flags = VGC_F_REPLY | (s->output_pending ? VGC_F_OUTPUT : 0);
            rh.length = (uint32_t)w.len;
            iov[0] = (struct iovec){ &rh, sizeof(rh) };
            iov[1] = (struct iovec){ reply, w.len };
            if (worker_write_full(fd, iov, 2) < 0) {
                why = "cannot send a reply";
                break;
            }
        }
        if (fr == VGCD_FRAME_CLOSE) {
            break;
        }
    }
    if (why) {
        fprintf(stderr, "vgcd: %s: closing: %s\n", peer, why);
        ret = -1;
    }
out:
    free(in);
    free(out);
    vgcd_session_free(s);
    return ret;
}
