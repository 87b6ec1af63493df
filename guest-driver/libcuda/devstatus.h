/*
 * devstatus.h - what the shim's private export table offers (vgc_private.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_DEVSTATUS_H
#define VGC_DEVSTATUS_H

#include "vgc_cuda.h"
#include "vgc_private.h"

/* struct vgc_private_table.device_status: see there. */
CUresult vgc_device_status(CUdevice dev, struct vgc_device_status *status,
                           struct vgc_process *procs, unsigned int max);
/* struct vgc_private_table.device_memory: see there. */
CUresult vgc_device_memory(CUdevice dev, uint64_t *total, uint64_t *free_bytes);
/* struct vgc_private_table.swap and swap_supported: see there. */
CUresult vgc_swap(bool out);
bool vgc_swap_supported(void);

#endif /* VGC_DEVSTATUS_H */
