/*
 * vgc_private.h - the shim's private export table, for this project's own
 * libraries and programs that load the shim: libnvidia-ml.so.1, and vgcd's
 * remote executor.
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

#include <stdbool.h>
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

    /*
     * The members below serve vgcd's remote executor, whose worker loads
     * this shim as its "driver" and passes another vgcd's device on to its
     * own clients (host-backend/executor/remote).
     *
     * address_window - device addresses the server hands out lie in
     * [*base, *base + *size); both 0 when it cannot say (a real GPU).
     * Returns CUDA_ERROR_NOT_INITIALIZED before cuInit.
     */
    CUresult (*address_window)(uint64_t *base, uint64_t *size);

    /*
     * keep_output - from now on, text that kernels print is kept for
     * take_output instead of being written to stdout (the remote executor's
     * client owns that text, not the worker's stdout).  At most
     * VGC_PRIVATE_KEPT_OUTPUT bytes wait; more is dropped, and the text says
     * so.  take_output moves up to @cap waiting bytes into @buf and returns
     * how many (0: none wait).
     */
    void (*keep_output)(void);
    size_t (*take_output)(char *buf, size_t cap);

    /*
     * device_memory - device memory of @dev as this client sees it (its
     * tenant's memory limit, when it has one), asked without a context, so
     * that it binds no GPU: what cuDeviceTotalMem and cuMemGetInfo would
     * say.
     * Returns: CUDA_SUCCESS; CUDA_ERROR_INVALID_VALUE for NULL pointers;
     * CUDA_ERROR_INVALID_DEVICE; CUDA_ERROR_NOT_INITIALIZED before cuInit;
     * CUDA_ERROR_NOT_SUPPORTED from a host that cannot say.
     */
    CUresult (*device_memory)(CUdevice dev, uint64_t *total, uint64_t *free_bytes);

    /*
     * address_window_partial - whether device memory may also lie outside
     * the window address_window gives (the server said
     * VGC_FEATURE_PARTIAL_WINDOW: a cuda executor with --address-base,
     * whose window holds what cuMemAlloc hands out while the driver places
     * managed memory and module globals itself).  False: the window holds
     * all of the server's device memory, or there is no window.
     */
    bool (*address_window_partial)(void);

    /*
     * swap - have the server move this session's device memory to its
     * host RAM (@out) or back (VGC_OP_SWAP): what a remote executor does
     * when its own vgcd swaps out the process it serves.  Between the two,
     * every call of the session fails with CUDA_ERROR_ILLEGAL_STATE.
     * Returns CUDA_SUCCESS; CUDA_ERROR_OUT_OF_MEMORY when the server has
     * no room for it (out) or its devices none yet (in: ask again);
     * CUDA_ERROR_ILLEGAL_STATE while the server swaps it on its own;
     * CUDA_ERROR_NOT_SUPPORTED when swap_supported is false.
     * swap_supported - whether the server said VGC_FEATURE_SWAP.
     */
    CUresult (*swap)(bool out);
    bool (*swap_supported)(void);
};

/* Most printed bytes keep_output holds before take_output fetches them. */
#define VGC_PRIVATE_KEPT_OUTPUT (1u << 20)

#endif /* VGC_PRIVATE_H */
