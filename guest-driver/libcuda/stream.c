/*
 * stream.c - stream-ordered work that runs in the guest: host functions and
 * stream-ordered allocation (its pools: mempool.c).
 *
 * Each is done at the point of the call, after the stream has drained:
 * CUDA promises that a host function runs after the work queued before it
 * and before the work queued after it, and that memory freed in stream
 * order is not reused before the work before the free is done.  Waiting
 * for the stream in the calling thread keeps both promises exactly; what
 * it gives up is overlap (the caller blocks until the stream is idle),
 * which only changes how long the program takes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>

#include "vgc_guest_impl.h"
#include "vgc_wire.h"
#include "context.h"
#include "mempool.h"
#include "mirror.h"

/* Wait for @s as cuStreamSynchronize does, managed memory included. */
static CUresult stream_drain(CUstream s)
{
    CUresult res = vgc_call_cuStreamSynchronize(s);

    vgc_mirror_after(res, VGC_MIRROR_HOSTSYNC, VGC_MIRROR_ANY);
    return res;
}

CUresult vgc_impl_cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!fn) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    res = stream_drain(hStream);
    if (res == CUDA_SUCCESS) {
        fn(userData);
    }
    return res;
}

/* The older form: the callback also learns the stream's status, and runs
 * even when the stream failed (then with that error). */
CUresult vgc_impl_cuStreamAddCallback(CUstream hStream, CUstreamCallback callback,
                                      void *userData, unsigned int flags)
{
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!callback || flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    res = stream_drain(hStream);
    if (res == CUDA_ERROR_INVALID_HANDLE || res == CUDA_ERROR_INVALID_CONTEXT ||
        res == CUDA_ERROR_DEVICE_UNAVAILABLE) {
        return res;
    }
    callback(hStream, res, userData);
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    /* Memory that exists now is usable by the stream's later work. */
    return vgc_mempool_alloc(dptr, bytesize, NULL);
}

CUresult vgc_impl_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                          CUstream hStream)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!pool) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return vgc_mempool_alloc(dptr, bytesize, pool);
}

CUresult vgc_impl_cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    CUresult res;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!vgc_stream_plausible((uintptr_t)hStream)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    res = stream_drain(hStream);
    return res == CUDA_SUCCESS ? vgc_impl_cuMemFree_v2(dptr) : res;
}
