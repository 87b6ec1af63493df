/*
 * swap.c - a worker's side of being swapped out instead of ended (vgcd
 * --swap, docs/pool.md "Swapping instead of ending").
 *
 * The owner of the worker's process (vgcd for a socket worker, the VM's
 * worker for a guest session) asks in the pool (vgc_pool_swap_ask) and
 * sends SIGUSR2.  The signal is blocked from the fork on and read from a
 * signalfd, never delivered: a handler would make EINTR appear in any
 * system call the executor makes in the middle of a call (a driver's, a
 * kernel's threads), where nobody expects it, and a flag set by a handler
 * races with the worker's going to sleep in read().  So the request is
 * seen at two places, both between calls: after each frame the worker
 * looks at its slot's state (one atomic load), and a worker about to wait
 * for its client's next request polls the signalfd beside the client's
 * socket (vgcd_swap_wait), which costs one poll() per wait, and only with
 * --swap.
 *
 * At that safe point vgcd_swap_cycle synchronizes the process's contexts,
 * moves its device memory to host RAM (the executor's swap_out), tells
 * the pool, and then takes no request until the pool says it may come
 * back; the client's next call simply takes long.  A client that leaves
 * meanwhile ends the worker as during any call (the watch thread).  An
 * executor that can move only part of the memory (swap_size: the cuda
 * executor's window) has exactly that part counted as moved; one with
 * nothing to move on the device the process was preempted for is not
 * swapped out for nothing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "worker.h"
#include "session.h"

/* A process's signalfd for SIGUSR2, -1 when swapping is off for it. */
static int swap_sigfd = -1;

int vgcd_swap_init(struct vgc_pool *pool, const struct vgc_executor *exec)
{
    sigset_t mask;
    bool can = pool && exec->swap_out && exec->swap_in && vgc_pool_swap_room(pool);

    if (pool) {
        vgc_pool_set_swappable(pool, false);
    }
    if (!can) {
        return -1;
    }
    /* Blocked since the fork (vgcd.c), so none was lost before this. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    swap_sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (swap_sigfd >= 0) {
        vgc_pool_set_swappable(pool, true);
    }
    return swap_sigfd;
}

bool vgcd_swap_due(const struct vgcd_session *s)
{
    return swap_sigfd >= 0 && vgc_pool_swap_wanted(s->pool);
}

int vgcd_swap_wait(int fd)
{
    for (;;) {
        struct pollfd p[2] = {
            { .fd = fd, .events = POLLIN },
            { .fd = swap_sigfd, .events = POLLIN },
        };
        struct signalfd_siginfo si;

        if (poll(p, swap_sigfd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (p[0].revents) {
            return 1;               /* data, EOF or an error: read says which */
        }
        if (p[1].revents & POLLIN) {
            while (read(swap_sigfd, &si, sizeof(si)) == sizeof(si)) {
            }
            return 0;               /* the caller looks at vgcd_swap_due */
        }
    }
}

static double swap_seconds(uint64_t from, uint64_t to)
{
    return (double)(to - from) / 1e9;
}

/*
 * Whether the client of a process swapped out for being idle has called
 * again (or left: the watch thread ends the worker then).  Until it has,
 * the process stays out, whatever room there is: idle= gives the memory
 * up until the memory is used.  A call is read already (buffered), waits
 * on the socket, or - a VM's guest session, whose calls the VM's worker
 * holds while it is away - is held by the owner, who says so in the pool.
 */
static bool swap_client_called(const struct vgcd_session *s)
{
    struct pollfd p = { .fd = s->client_fd, .events = POLLIN };

    return s->call_buffered || vgc_pool_swap_call_waiting(s->pool) || s->client_fd < 0 ||
           poll(&p, 1, 0) > 0;
}

static void swap_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Let every context of the session finish its device work. */
static void swap_sync_contexts(struct vgcd_session *s)
{
    GHashTableIter it;
    gpointer key, value;

    if (!s->exec->ops.cuCtxSetCurrent || !s->exec->ops.cuCtxSynchronize) {
        return;
    }
    g_hash_table_iter_init(&it, s->by_id);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        struct vgcd_handle *h = value;

        /* A failure (a context's sticky error) stays for the client's
         * next call to see; the memory moves all the same. */
        if (h->kind == VGC_HANDLE_CTX && s->exec->ops.cuCtxSetCurrent(h->obj) ==
                                         CUDA_SUCCESS) {
            s->exec->ops.cuCtxSynchronize();
        }
    }
    /* The next call sets its own (vgcd_session_enter). */
    s->exec->ops.cuCtxSetCurrent(NULL);
}

/* "200.0 MiB (device 0: 150.0, device 1: 50.0)" of what the slot has out. */
static void swap_amounts(struct vgc_pool *pool, char *buf, size_t size)
{
    size_t len;
    int n = 0;

    len = (size_t)snprintf(buf, size, "%.1f MiB",
                           (double)vgc_pool_swapped_mine(pool, -1) / (1 << 20));
    for (int d = 0; d < vgc_pool_devices(pool) && len < size; d++) {
        uint64_t b = vgc_pool_swapped_mine(pool, d);

        if (b) {
            len += (size_t)snprintf(buf + len, size - len, "%sdevice %d: %.1f", n++ ? ", " : " (",
                                    d, (double)b / (1 << 20));
        }
    }
    if (n && len < size) {
        snprintf(buf + len, size - len, ")");
    }
}

/*
 * Count what the executor will move in the swap room: everything the slot
 * holds, or for an executor that moves only part of it (swap_size: the
 * cuda executor's window) exactly that part, so that the devices are
 * given back what was freed on them and no more.
 */
static bool swap_hold(struct vgcd_session *s)
{
    int n = vgc_pool_devices(s->pool);
    uint64_t *bytes;
    bool held;

    if (!s->exec->swap_size) {
        return vgc_pool_swap_hold(s->pool);
    }
    bytes = calloc((size_t)n, sizeof(*bytes));
    if (!bytes) {
        return false;
    }
    for (int d = 0; d < n; d++) {
        bytes[d] = s->exec->swap_size(d);
    }
    held = vgc_pool_swap_hold_part(s->pool, bytes);
    free(bytes);
    return held;
}

/*
 * Whether swapping out would free nothing on the device the process is
 * preempted for: its executor moves only part of its memory (cuda: the
 * window) and has none of that there (managed memory only).  The pool
 * chose it for what it holds there, which would stay.
 */
static bool swap_frees_nothing(const struct vgcd_session *s)
{
    int dev = vgc_pool_swap_device(s->pool);

    return s->exec->swap_size && dev >= 0 && s->exec->swap_size(dev) == 0;
}

/* ", 12.0 MiB stay on the devices (...)": what the executor could not
 * move, which the pool still charges there; "" when nothing. */
static void swap_left(struct vgc_pool *pool, char *buf, size_t size)
{
    uint64_t left = vgc_pool_slot_used(pool, vgc_pool_bound_slot(pool));

    buf[0] = '\0';
    if (left) {
        snprintf(buf, size, "; %.1f MiB stay on the devices (memory its executor cannot "
                 "swap)", (double)left / (1 << 20));
    }
}

/*
 * Move the process's memory out: its room held in the pool, the executor's
 * move, the pool told.  *@fits false (and CUDA_ERROR_OUT_OF_MEMORY) when
 * the room no longer holds it, with nothing held; the executor's CUresult,
 * with the room given back, when it could not move.
 */
static CUresult swap_move_out(struct vgcd_session *s, bool *fits)
{
    CUresult rc;

    *fits = swap_hold(s);
    if (!*fits) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = s->exec->swap_out();
    if (rc != CUDA_SUCCESS) {
        vgc_pool_swap_unhold(s->pool);
        return rc;
    }
    vgc_pool_swap_moved(s->pool);
    return CUDA_SUCCESS;
}

int vgcd_swap_cycle(struct vgcd_session *s)
{
    struct vgc_pool *pool = s->pool;
    uint64_t t0, t1, t2, t3;
    bool retried = false, idle, fits;
    char amounts[256], left[128];
    CUresult rc;

    /* From here on the worker is as good as inside a call: a client that
     * leaves ends it (the watch thread). */
    vgcd_worker_busy(true);
    swap_sync_contexts(s);
    if (!vgc_pool_swap_begin(pool)) {
        /* Too late: its owner gave up and is ending it. */
        vgcd_worker_busy(false);
        return 0;
    }
    if (swap_frees_nothing(s)) {
        /* One swapped for being idle may be of any priority, and is never
         * ended: it is left running, unmarked, as one that was called in
         * time.  One of a lower priority is ended, as without --swap: its
         * memory there is what the higher priority is waiting for. */
        if (vgc_pool_swap_reason(pool) == VGC_PREEMPT_IDLE) {
            fprintf(stderr, "vgcd: %s: not swapped out: nothing of its memory on device %d "
                    "can be (its executor cannot swap it); left running\n", s->peer,
                    vgc_pool_swap_device(pool));
            vgc_pool_swap_returned(pool);
            vgcd_worker_busy(false);
            return 0;
        }
        fprintf(stderr, "vgcd: %s: nothing of its memory on device %d can be swapped out "
                "(its executor cannot swap it); ending it\n", s->peer,
                vgc_pool_swap_device(pool));
        return -1;
    }
    t0 = vgc_pool_clock();
    rc = swap_move_out(s, &fits);
    if (!fits) {
        fprintf(stderr, "vgcd: %s: its %.1f MiB no longer fit in what is left of --swap; "
                "ending it\n", s->peer,
                (double)vgc_pool_slot_used(pool, vgc_pool_bound_slot(pool)) / (1 << 20));
        return -1;
    }
    if (rc != CUDA_SUCCESS) {
        fprintf(stderr, "vgcd: %s: cannot swap out (CUresult %d); ending it\n", s->peer,
                (int)rc);
        return -1;
    }
    t1 = vgc_pool_clock();
    swap_amounts(pool, amounts, sizeof(amounts));
    swap_left(pool, left, sizeof(left));
    fprintf(stderr, "vgcd: %s: swapped out %s to host RAM in %.3f s%s; its calls wait until "
            "it may come back\n", s->peer, amounts, swap_seconds(t0, t1), left);
    /* Bounded steps: the pool is asked again every VGC_POOL_SWAP_POLL_MS.
     * One swapped out for being idle waits for its client's call first;
     * then it returns as any other, as soon as its memory fits. */
    idle = vgc_pool_swap_reason(pool) == VGC_PREEMPT_IDLE;
    for (;;) {
        if ((!idle || swap_client_called(s)) &&
            vgc_pool_swap_may_return(pool, vgc_pool_time_of_day()) &&
            vgc_pool_swap_reserve(pool)) {
            t2 = vgc_pool_clock();
            rc = s->exec->swap_in();
            if (rc == CUDA_SUCCESS) {
                break;
            }
            vgc_pool_swap_unreserve(pool);
            if (!retried) {
                fprintf(stderr, "vgcd: %s: cannot swap back in yet (CUresult %d); trying "
                        "again\n", s->peer, (int)rc);
                retried = true;
            }
        }
        swap_sleep_ms(VGC_POOL_SWAP_POLL_MS);
    }
    t3 = vgc_pool_clock();
    fprintf(stderr, "vgcd: %s: swapped in %s in %.3f s, after %.1f s out (%s)\n", s->peer,
            amounts, swap_seconds(t2, t3), swap_seconds(t1, t2),
            vgc_pool_swap_reason(pool) == VGC_PREEMPT_WINDOW ? "its window is open again" :
            idle ? "its client called again, and it fits" : "the device has room again");
    vgc_pool_swap_returned(pool);
    vgcd_worker_busy(false);
    return 0;
}

bool vgcd_swap_on_request_possible(void)
{
    return swap_sigfd >= 0;
}

CUresult vgcd_swap_on_request(struct vgcd_session *s, bool out)
{
    struct vgc_pool *pool = s->pool;
    char amounts[256], left[128];
    uint64_t t0 = vgc_pool_clock();
    CUresult rc;
    bool fits;

    if (swap_sigfd < 0) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (out == s->swapped_on_request) {
        return CUDA_SUCCESS;
    }
    if (out) {
        swap_sync_contexts(s);
        if (!vgc_pool_swap_volunteer(pool)) {
            return CUDA_ERROR_ILLEGAL_STATE;    /* the pool is at it */
        }
        rc = swap_move_out(s, &fits);
        if (rc != CUDA_SUCCESS) {
            vgc_pool_swap_withdraw(pool);
            if (!fits) {
                fprintf(stderr, "vgcd: %s: asked to swap out, but its %.1f MiB do not fit "
                        "in what is left of --swap\n", s->peer,
                        (double)vgc_pool_slot_used(pool, vgc_pool_bound_slot(pool)) /
                        (1 << 20));
            } else {
                fprintf(stderr, "vgcd: %s: asked to swap out, but cannot (CUresult %d)\n",
                        s->peer, (int)rc);
            }
            return rc;
        }
        s->swapped_on_request = true;
        swap_amounts(pool, amounts, sizeof(amounts));
        swap_left(pool, left, sizeof(left));
        fprintf(stderr, "vgcd: %s: swapped out %s to host RAM in %.3f s%s, as its client "
                "asked\n", s->peer, amounts, swap_seconds(t0, vgc_pool_clock()), left);
        return CUDA_SUCCESS;
    }
    /* Back only when it fits beside equal and higher priorities, as a
     * process this pool swapped out; the client asks again meanwhile. */
    if (!vgc_pool_swap_may_return(pool, vgc_pool_time_of_day()) ||
        !vgc_pool_swap_reserve(pool)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    swap_amounts(pool, amounts, sizeof(amounts));
    rc = s->exec->swap_in();
    if (rc != CUDA_SUCCESS) {
        vgc_pool_swap_unreserve(pool);
        return rc;
    }
    vgc_pool_swap_returned(pool);
    s->swapped_on_request = false;
    fprintf(stderr, "vgcd: %s: swapped in %s in %.3f s, as its client asked\n", s->peer,
            amounts, swap_seconds(t0, vgc_pool_clock()));
    return CUDA_SUCCESS;
}
