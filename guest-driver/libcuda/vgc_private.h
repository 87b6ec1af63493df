/*
 * vgc_private.h - the shim's private export table, for this project's own
 * guest libraries (libnvidia-ml.so.1) and tools.
 *
 * The shim exports exactly NVIDIA's symbols, so what it offers beyond the
 * driver API is reached the way NVIDIA's runtime reaches the driver's own
 * private interfaces: cuGetExportTable with a UUID of ours, which returns
 * a pointer to struct vgc_private_table.  A shim that does not know the
 * UUID refuses it (CUDA_ERROR_NOT_SUPPORTED); NVIDIA's driver does too.
 *
 * Rules: members are only ever appended; a caller checks that @size covers
 * a member before it calls it.  Every function may be called from any
 * thread, after cuInit.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_PRIVATE_H
#define VGC_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

/* 61fddad0-6242-49f8-8e10-a25adfb73038, in CUuuid byte order. */
#define VGC_PRIVATE_TABLE_UUID \
    { 0x61, 0xfd, 0xda, 0xd0, 0x62, 0x42, 0x49, 0xf8, \
      0x8e, 0x10, 0xa2, 0x5a, 0xdf, 0xb7, 0x30, 0x38 }

/* Most processes one device_status call lists (VGC_DEVICE_STATUS_MAX_PROCS). */
#define VGC_PRIVATE_MAX_PROCS 1024u

/* A process using a device, as the host accounts it. */
struct vgc_process {
    uint32_t pid;               /* in the guest's numbering (its own getpid()) */
    uint64_t used_bytes;        /* device memory it holds */
};

/* A device's figures, as nvmlDeviceGetUtilizationRates defines them. */
struct vgc_device_status {
    uint32_t gpu_util;          /* percent of the last second kernels ran */
    uint32_t memory_util;       /* percent of it copies ran */
    uint32_t nprocs;            /* processes of this tenant on the device */
};

struct vgc_private_table {
    size_t size;                /* sizeof(struct vgc_private_table) of the shim */

    /*
     * device_status - utilization of device @dev, and the processes of
     * this client's tenant (this VM; this uid or address for socket
     * clients) that have a context or memory on it.
     * @dev:    a CUdevice ordinal
     * @status: receives the figures; status->nprocs counts every process,
     *          even those that did not fit in @procs
     * @procs:  receives min(status->nprocs, @max) entries; NULL when @max is 0
     * @max:    room in @procs, at most VGC_PRIVATE_MAX_PROCS
     * Returns: CUDA_SUCCESS; CUDA_ERROR_INVALID_VALUE for bad arguments;
     * CUDA_ERROR_INVALID_DEVICE; CUDA_ERROR_NOT_INITIALIZED before cuInit;
     * CUDA_ERROR_NOT_SUPPORTED when the host accounts nothing.
     */
    CUresult (*device_status)(CUdevice dev, struct vgc_device_status *status,
                              struct vgc_process *procs, unsigned int max);
};

#endif /* VGC_PRIVATE_H */
