/*
 * occupancy.c - cuOccupancyMaxPotentialBlockSize(WithFlags), computed in
 * the shim.
 *
 * These calls take a host callback (dynamic shared memory needed for a
 * block size) that cannot be called across the wire, so the shim runs the
 * driver's search itself: for every block size from the limit down in
 * steps of the warp size, it asks the host how many blocks of that size
 * fit on one SM (cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
 * which travels) and keeps the size with the most resident threads, the
 * larger size on ties.  Values that do not depend on the block size are
 * asked once.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>

#include "vgc_cuda.h"
#include "vgc_guest_impl.h"

CUresult vgc_impl_cuOccupancyMaxPotentialBlockSizeWithFlags(
    int *minGridSize, int *blockSize, CUfunction func,
    CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
    int blockSizeLimit, unsigned int flags)
{
    CUdevice dev;
    int max_threads, warp, sms, best_bs = 0, best_blocks = 0, best = 0;
    int bs, limit;
    CUresult rc;

    if (!minGridSize || !blockSize || blockSizeLimit < 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    rc = vgc_call_cuCtxGetDevice(&dev);
    if (rc == CUDA_SUCCESS &&
        vgc_call_cuFuncGetAttribute(&max_threads,
                                    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                    func) != CUDA_SUCCESS) {
        /* A CUkernel (cuFuncGetAttribute takes functions only): the
         * device's limit; the host's per-size answer still says 0 for
         * sizes the kernel cannot run with. */
        rc = vgc_call_cuDeviceGetAttribute(
            &max_threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev);
    }
    if (rc == CUDA_SUCCESS) {
        rc = vgc_call_cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE,
                                           dev);
    }
    if (rc == CUDA_SUCCESS) {
        rc = vgc_call_cuDeviceGetAttribute(
            &sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    }
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    if (warp <= 0 || max_threads <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    limit = blockSizeLimit == 0 || blockSizeLimit > max_threads ?
            max_threads : blockSizeLimit;
    bs = limit % warp ? limit - limit % warp : limit;
    if (bs == 0) {
        bs = limit;     /* a limit under one warp: that size alone */
    }
    for (; bs > 0; bs = bs > warp ? bs - warp : 0) {
        size_t dyn = blockSizeToDynamicSMemSize ?
                     blockSizeToDynamicSMemSize(bs) : dynamicSMemSize;
        int blocks = 0;

        rc = vgc_call_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
            &blocks, func, bs, dyn, flags);
        if (rc != CUDA_SUCCESS) {
            return rc;
        }
        if (blocks * bs > best) {
            best = blocks * bs;
            best_bs = bs;
            best_blocks = blocks;
        }
        if (bs <= warp) {
            break;
        }
    }
    *minGridSize = best_blocks * sms;
    *blockSize = best_bs;
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuOccupancyMaxPotentialBlockSize(
    int *minGridSize, int *blockSize, CUfunction func,
    CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
    int blockSizeLimit)
{
    return vgc_impl_cuOccupancyMaxPotentialBlockSizeWithFlags(
        minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
        dynamicSMemSize, blockSizeLimit, CU_OCCUPANCY_DEFAULT);
}
