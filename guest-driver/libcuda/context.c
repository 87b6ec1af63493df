/*
 * context.c - cuInit, and the per-thread context stack.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdatomic.h>

#include "vgc_guest_impl.h"
#include "context.h"
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
    CUresult res = vgc_call_cuCtxDestroy_v2(ctx);
    int j = 0;

    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* A destroyed context leaves this thread's stack wherever it is. */
    for (int i = 0; i < ctx_depth; i++) {
        if (ctx_stack[i] != (uintptr_t)ctx) {
            ctx_stack[j++] = ctx_stack[i];
        }
    }
    ctx_depth = j;
    return CUDA_SUCCESS;
}
