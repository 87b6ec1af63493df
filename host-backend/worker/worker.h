/*
 * worker.h - a worker process serves one client.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_WORKER_H
#define VGCD_WORKER_H

#include <stdbool.h>

#include "executor.h"

struct vgc_pool;

/*
 * Serve the client on connected socket @fd until it leaves or breaks the
 * protocol.  @pool (bound to this worker's slot; NULL for none) is where
 * it shows itself to NVML.  @peer names it in log lines.
 * Returns 0 after an orderly end, -1 after a violation or I/O error (logged).
 */
int vgcd_worker_serve_socket(int fd, struct vgc_executor *exec, struct vgc_pool *pool,
                             const char *peer);

/*
 * Watch the client's end of @fd from a thread: if it goes away while the
 * worker is busy (vgcd_worker_busy(true)), the worker process ends.
 */
void vgcd_worker_watch(int fd, const char *peer);
void vgcd_worker_busy(bool busy);

/* ---- swapping out instead of being ended (swap.c) ------------------------- */

struct vgcd_session;

/*
 * Once the executor is made: tell @pool (bound to this worker's slot;
 * NULL for none) whether this worker can swap out - vgcd --swap is given
 * and @exec can (its swap_out) - and if so return a signalfd for the
 * owner's SIGUSR2 (blocked since the fork), else -1.
 */
int vgcd_swap_init(struct vgc_pool *pool, const struct vgc_executor *exec);
/* Whether the session's slot is asked to swap out: look between calls. */
bool vgcd_swap_due(const struct vgcd_session *s);
/*
 * Wait until @fd, the client's, is readable (returns 1) or SIGUSR2 came
 * (returns 0: look at vgcd_swap_due); -1 on a poll error.  Only after
 * vgcd_swap_init returned a signalfd.
 */
int vgcd_swap_wait(int fd);
/*
 * At a safe point, asked to swap out: synchronize, move the process's
 * device memory to host RAM, wait (bounded steps) until the pool lets it
 * come back, bring it back; logged.  Returns 0 to go on serving, -1 when
 * the process must end instead (its memory no longer fits the swap room,
 * or the executor failed; logged).
 */
int vgcd_swap_cycle(struct vgcd_session *s);
/* Whether this process swaps when its client asks (VGC_FEATURE_SWAP). */
bool vgcd_swap_on_request_possible(void);
/*
 * Its client asked (VGC_OP_SWAP; @out: out, else back in):
 * the same moves as vgcd_swap_cycle, at once and without waiting; the
 * session then takes no call until it is back in (s->swapped_on_request).
 * Returns the CUresult of the reply (vgc_wire.h); logged.
 */
CUresult vgcd_swap_on_request(struct vgcd_session *s, bool out);

#endif /* VGCD_WORKER_H */
