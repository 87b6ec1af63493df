/*
 * vhost_worker.h - serve one VM's vhost-user-gpu-compute device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGCD_VHOST_WORKER_H
#define VGCD_VHOST_WORKER_H

#include "executor.h"

struct vgc_pool;
struct vgc_tenant;

/*
 * Serve the vhost-user connection @fd (QEMU's end of the chardev) until
 * QEMU goes away.  Every guest session runs in a process of its own,
 * forked from here, with its own @executor of config @cfg, accounted to
 * its own slot of @pool as one of the VM's processes, @tenant.
 * Returns 0 when QEMU disconnected, -1 after an error (logged).
 */
int vgcd_vhost_serve(int fd, const char *executor, const struct vgc_executor_config *cfg,
                     struct vgc_pool *pool, const struct vgc_tenant *tenant,
                     const char *peer);

#endif /* VGCD_VHOST_WORKER_H */
