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

#endif /* VGCD_WORKER_H */
