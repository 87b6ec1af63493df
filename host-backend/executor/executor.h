/*
 * executor.h - what a worker asks of an executor.
 *
 * An executor runs CUDA driver calls for one client.  Its interface is the
 * driver API itself: struct vgc_exec_ops (generated from NVIDIA's headers)
 * holds one member per exported driver symbol, named after the symbol and
 * typed by its PFN typedef, so the cuda executor fills it with dlsym() and the
 * cpu executor with its own functions of the same signatures.  A NULL member
 * means "not supported here": the worker answers CUDA_ERROR_NOT_SUPPORTED.
 *
 * Rules:
 *  - one executor per worker process, created once; its calls come from the
 *    worker's single thread, so executors keep process-global state;
 *  - arguments reach an executor already decoded and bounds-checked as wire
 *    data (lengths fit the payload, handles exist in the session's table),
 *    but device addresses are checked by the executor: only it knows what
 *    is allocated;
 *  - the current context is the driver's usual per-thread current context;
 *    the worker sets it with ops.cuCtxSetCurrent before each call;
 *  - memory budgets go through the pool (host-backend/pool/pool.h), never
 *    around it, so that every worker of one daemon sees the same numbers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VGC_EXECUTOR_H
#define VGC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgc_cuda.h"
#include "vgc_exec_ops.h"       /* generated: struct vgc_exec_ops */

struct vgc_pool;

struct vgc_executor_config {
    int ndevices;               /* cpu: virtual devices; cuda: at most this many, 0 = all */
    uint64_t device_memory;     /* cpu: bytes per device; cuda: cap per device, 0 = physical */
    uint64_t oversubscribe;     /* host RAM per device that may back device memory
                                   past its capacity (--oversubscribe); 0 = none */
    struct vgc_pool *pool;      /* memory accounting shared by workers; NULL = none */
    uint64_t va_base;           /* where device addresses start (--address-base:
                                   vgcds aggregated by one remote executor need
                                   windows apart); cpu: 0 = default; cuda: 0 =
                                   the driver chooses, else cuMemAlloc places
                                   its memory from here (cuda/cuda_window.c) */
};

struct vgc_executor {
    const char *name;           /* "cpu", "cuda" */
    struct vgc_exec_ops ops;

    /* Device addresses handed out lie in [va_base, va_base + va_size);
     * the guest reserves that range so they never alias its own pointers.
     * Both 0 when the executor cannot say (the real driver).  va_partial:
     * the window holds what cuMemAlloc hands out, but device memory may
     * lie outside it too (the driver places managed memory and module
     * globals itself), so an address outside is not known to be host
     * memory (VGC_FEATURE_PARTIAL_WINDOW). */
    uint64_t va_base;
    uint64_t va_size;
    bool va_partial;

    /*
     * Load a module or library from an image of known size: a fatbin, a
     * cubin or NUL-terminated PTX.  The image is copied; the executor keeps
     * no pointer into it.  Same results as cuModuleLoadData /
     * cuLibraryLoadData.
     */
    CUresult (*module_load)(CUmodule *mod, const void *image, size_t size);
    CUresult (*library_load)(CUlibrary *lib, const void *image, size_t size);

    /*
     * Text the device printed (kernel printf) and nobody fetched yet: a
     * cheap test, and a drain of up to @cap bytes (returns how many).
     * Both NULL for an executor whose device output goes elsewhere.
     */
    bool (*output_pending)(void);
    size_t (*output_drain)(char *buf, size_t cap);

    /*
     * Swapping (vgcd --swap, docs/pool.md): move every device allocation
     * of this process to host RAM, and back, at the same device addresses
     * (the client's data structures and its kernels hold them).  Called
     * between calls, once the worker synchronized its contexts: no device
     * work runs.  swap_out copies each allocation's bytes to host memory
     * and frees its device memory, keeping its address reserved; until
     * swap_in backs the addresses again and copies the bytes back, no call
     * may touch them (the worker takes none).  Neither touches the pool:
     * the worker moves the accounting, which is exactly what the executor
     * reserved for these allocations.  On failure nothing moved.  Both
     * NULL when this executor cannot swap (cuda without --address-base;
     * remote whose upstream does not swap): a preempted process is then
     * ended.
     */
    CUresult (*swap_out)(void);
    CUresult (*swap_in)(void);
    /*
     * For an executor that swaps only part of a process's memory (cuda:
     * what its window holds, not managed memory or module globals): the
     * bytes swap_out would move off physical device @dev now, which is
     * what the pool was charged for them.  The worker moves exactly that
     * in the pool's accounting (vgc_pool_swap_hold_part); what the pool
     * charged for the rest stays charged on the device.  NULL: swap_out
     * moves everything the pool charged this process (cpu).
     */
    uint64_t (*swap_size)(int dev);

    /* Release everything; the process is about to end. May be NULL. */
    void (*destroy)(void);

    /* Set when this executor could not start: the worker refuses the
     * client's handshake with this reason (vgc_executor_refusing). */
    const char *refusal;
};

/*
 * Create the executor named @name for this process: "cpu", "cuda", or
 * "remote:ADDRESS" (unix:PATH or tcp:HOST:PORT of another vgcd).
 * @cfg: sizes and the pool; copied.
 * @err: on failure receives a malloc()ed message the caller frees.
 * Returns: the executor, or NULL with *err set.
 */
struct vgc_executor *vgc_executor_create(const char *name,
                                         const struct vgc_executor_config *cfg,
                                         char **err);

/*
 * An executor that serves nothing and says @why: what a worker uses when
 * vgc_executor_create failed, so that its client hears the reason in the
 * handshake reply instead of a closed connection.  Takes @why (malloc()ed,
 * may be NULL).
 */
struct vgc_executor *vgc_executor_refusing(const char *name, char *why);

/*
 * Whether executor @name can serve clients here: it is created in a child
 * process (a CUDA driver initialised in the daemon would not survive the
 * fork of every worker) and must find at least one device; how many into
 * *@ndevices and the memory of the smallest into *@memory (both 0 for
 * "cpu", which is not probed: its devices are configured).  Returns true,
 * or false with *err a malloc()ed reason.
 */
bool vgc_executor_usable(const char *name, const struct vgc_executor_config *cfg,
                         int *ndevices, uint64_t *memory, char **err);

struct vgc_executor *vgc_cpu_executor_create(const struct vgc_executor_config *cfg,
                                             char **err);
/* Whether @cfg's devices fit the cpu executor's address range from
 * cfg->va_base; false with *err a malloc()ed reason. */
bool vgc_cpu_window_check(const struct vgc_executor_config *cfg, char **err);
/* Whether @cfg's devices fit a cuda executor's window from cfg->va_base
 * (cuda/cuda_window.h has the rules); false with *err a malloc()ed reason. */
bool vgc_cuda_window_check(const struct vgc_executor_config *cfg, char **err);
/* The cuda executor on the host's driver (VGC_HOST_LIBCUDA, else libcuda.so.1). */
struct vgc_executor *vgc_cuda_executor_create(const struct vgc_executor_config *cfg,
                                              char **err);
/* The cuda executor on a driver given as a table of its functions (the
 * remote executor: this project's shim, or an aggregate of several). */
struct vgc_executor *vgc_cuda_executor_over(const struct vgc_executor_config *cfg,
                                            const struct vgc_exec_ops *driver, char **err);
/* Another vgcd's devices, through the shim (executor/remote/). */
/*
 * Bytes of one channel of CUDA array format @fmt: 1, 2 or 4 for the
 * integer, half and float formats; 0 for one this project does not model
 * (block-compressed, video): the cpu executor refuses those, the cuda
 * executor charges them as 4.
 */
static inline unsigned vgc_array_format_bytes(CUarray_format fmt)
{
    switch (fmt) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
        return 4;
    default:
        return 0;
    }
}

struct vgc_executor *vgc_remote_executor_create(const struct vgc_executor_config *cfg,
                                                const char *address, char **err);

#endif /* VGC_EXECUTOR_H */
