/*
 * context.c - cuInit, and the per-thread context stack.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vgc_guest_impl.h"
#include "context.h"
#include "mirror.h"
#include "export_tables.h"
#include "transport.h"

#define VGC_CTX_STACK_MAX 64

static __thread uint64_t ctx_stack[VGC_CTX_STACK_MAX];
static __thread int ctx_depth;
static atomic_bool init_done;

bool vgc_initialized(void)
{
    return atomic_load(&init_done);
}

uint64_t vgc_ctx_current_handle(void)
{
    return ctx_depth ? ctx_stack[ctx_depth - 1] : 0;
}

static CUresult ctx_push(uint64_t h)
{
    if (ctx_depth == VGC_CTX_STACK_MAX) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    ctx_stack[ctx_depth++] = h;
    return CUDA_SUCCESS;
}

/* Contexts are host handles of kind VGC_HANDLE_CTX; anything else is not one. */
static bool ctx_plausible(CUcontext ctx)
{
    return VGC_HANDLE_KIND((uintptr_t)ctx) == VGC_HANDLE_CTX;
}

CUresult vgc_impl_cuInit(unsigned int Flags)
{
    CUresult res;

    if (Flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = vgc_transport_connect();
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = vgc_call_cuInit(Flags);
    if (res == CUDA_SUCCESS) {
        atomic_store(&init_done, true);
    }
    return res;
}

CUresult vgc_impl_cuCtxGetCurrent(CUcontext *pctx)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pctx = (CUcontext)(uintptr_t)vgc_ctx_current_handle();
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuCtxSetCurrent(CUcontext ctx)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!ctx) {
        if (ctx_depth) {
            ctx_depth--;
        }
        return CUDA_SUCCESS;
    }
    if (!ctx_plausible(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (ctx_depth) {
        ctx_stack[ctx_depth - 1] = (uintptr_t)ctx;
        return CUDA_SUCCESS;
    }
    return ctx_push((uintptr_t)ctx);
}

CUresult vgc_impl_cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!ctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!ctx_plausible(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    return ctx_push((uintptr_t)ctx);
}

CUresult vgc_impl_cuCtxPopCurrent_v2(CUcontext *pctx)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!ctx_depth) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    ctx_depth--;
    if (pctx) {
        *pctx = (CUcontext)(uintptr_t)ctx_stack[ctx_depth];
    }
    return CUDA_SUCCESS;
}

CUresult vgc_impl_cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    CUresult res = vgc_call_cuCtxCreate_v2(pctx, flags, dev);

    /* "If a context is already current to the thread, it is supplanted by
     * the newly created context" (cuda.h). */
    if (res == CUDA_SUCCESS) {
        res = ctx_push((uintptr_t)*pctx);
    }
    return res;
}

CUresult vgc_impl_cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray,
                                 int numParams, unsigned int flags, CUdevice dev)
{
    if (numParams > 0 || paramsArray) {
        return CUDA_ERROR_NOT_SUPPORTED;    /* execution affinity (MPS) */
    }
    return vgc_impl_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult vgc_impl_cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params,
                                 unsigned int flags, CUdevice dev)
{
    if (params && (params->numExecAffinityParams > 0 || params->cigParams)) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return vgc_impl_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult vgc_impl_cuCtxDestroy_v2(CUcontext ctx)
{
    CUresult res;
    int j = 0;

    /* The runtime's per-context state is torn down while the context
     * still works: its destructors free what they allocated in it. */
    if (ctx_plausible(ctx)) {
        vgc_cls_context_gone((uintptr_t)ctx);
    }
    res = vgc_call_cuCtxDestroy_v2(ctx);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    vgc_mirror_context_gone((uintptr_t)ctx);
    /* A destroyed context leaves this thread's stack wherever it is. */
    for (int i = 0; i < ctx_depth; i++) {
        if (ctx_stack[i] != (uintptr_t)ctx) {
            ctx_stack[j++] = ctx_stack[i];
        }
    }
    ctx_depth = j;
    return CUDA_SUCCESS;
}

/* ---- primary contexts ------------------------------------------------------ */

/*
 * Each guest process has its own session, so the host's retain count of a
 * primary context is exactly the retains made by this process: counting
 * them here tells which release is the last, before it is sent, so the
 * runtime's context-local storage can be destroyed while the context works.
 */
#define VGC_PRIMARY_MAX 64

static pthread_mutex_t primary_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t ctx;               /* handle, 0 until first retained */
    unsigned refs;
} primary[VGC_PRIMARY_MAX];

CUresult vgc_impl_cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult res = vgc_call_cuDevicePrimaryCtxRetain(pctx, dev);

    if (res == CUDA_SUCCESS && dev >= 0 && dev < VGC_PRIMARY_MAX) {
        pthread_mutex_lock(&primary_lock);
        primary[dev].ctx = (uintptr_t)*pctx;
        primary[dev].refs++;
        pthread_mutex_unlock(&primary_lock);
    }
    return res;
}

/* Run @dev's context-local storage destructors if @last (or its refs are 1). */
static void primary_going(CUdevice dev, bool always)
{
    uint64_t ctx = 0;

    if (dev < 0 || dev >= VGC_PRIMARY_MAX) {
        return;
    }
    pthread_mutex_lock(&primary_lock);
    if (always || primary[dev].refs == 1) {
        ctx = primary[dev].ctx;
    }
    pthread_mutex_unlock(&primary_lock);
    if (ctx) {
        vgc_cls_context_gone(ctx);
    }
}

static void primary_released(CUdevice dev, CUresult res, bool reset)
{
    uint64_t gone = 0;

    if (res != CUDA_SUCCESS || dev < 0 || dev >= VGC_PRIMARY_MAX) {
        return;
    }
    pthread_mutex_lock(&primary_lock);
    if (reset) {
        primary[dev].refs = 0;
    } else if (primary[dev].refs) {
        primary[dev].refs--;
    }
    if (primary[dev].refs == 0) {
        gone = primary[dev].ctx;    /* the host freed its memory */
    }
    pthread_mutex_unlock(&primary_lock);
    if (gone) {
        vgc_mirror_context_gone(gone);
    }
}

/*
 * Release and reset, in their two ABIs: run the destructors the driver
 * would run, make the remote call, then account for it.
 */
static CUresult primary_drop(CUdevice dev, bool reset, CUresult (*call)(CUdevice))
{
    CUresult res;

    primary_going(dev, reset);
    res = call(dev);
    primary_released(dev, res, reset);
    return res;
}

CUresult vgc_impl_cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return primary_drop(dev, false, vgc_call_cuDevicePrimaryCtxRelease);
}

CUresult vgc_impl_cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    return primary_drop(dev, false, vgc_call_cuDevicePrimaryCtxRelease_v2);
}

CUresult vgc_impl_cuDevicePrimaryCtxReset(CUdevice dev)
{
    return primary_drop(dev, true, vgc_call_cuDevicePrimaryCtxReset);
}

CUresult vgc_impl_cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    return primary_drop(dev, true, vgc_call_cuDevicePrimaryCtxReset_v2);
}

/* CUDA 13's form names the context; cudaDeviceSynchronize uses it. */
CUresult vgc_impl_cuCtxSynchronize_v2(CUcontext ctx)
{
    CUresult res, pop;

    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    if (!ctx || (uintptr_t)ctx == vgc_ctx_current_handle()) {
        return vgc_call_cuCtxSynchronize();
    }
    res = vgc_impl_cuCtxPushCurrent_v2(ctx);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = vgc_call_cuCtxSynchronize();
    pop = vgc_impl_cuCtxPopCurrent_v2(NULL);
    return res != CUDA_SUCCESS ? res : pop;
}

bool vgc_device_valid(int dev)
{
    int n = 0;

    return dev >= 0 && vgc_call_cuDeviceGetCount(&n) == CUDA_SUCCESS && dev < n;
}

/*
 * No profiler can attach to the shim's process (the device is elsewhere),
 * and without one the driver's answer to these is success.
 */
CUresult vgc_impl_cuProfilerStart(void)
{
    if (!vgc_initialized()) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    return vgc_ctx_current_handle() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult vgc_impl_cuProfilerStop(void)
{
    return vgc_impl_cuProfilerStart();
}
