/*
 * manual.c - the calls whose wire form differs from their C form.
 *
 * The generated dispatcher has already decoded and bounds-checked the
 * arguments into struct vgcd_args_<symbol> and resolved their handles;
 * these handlers only do what the spec cannot express.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "vgc_attr.h"
#include "vgc_host_args.h"
#include "image_cache.h"
#include "manual_array.h"
#include "session.h"
#include "status.h"

/* ---- devices: the tenant's virtual GPUs (devmap.c) ------------------------ */

CUresult vgcd_cuDeviceGetCount(struct vgcd_session *s, struct vgcd_args_cuDeviceGetCount *a)
{
    CUresult res;
    int n;

    if (!s->exec->ops.cuDeviceGetCount) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuDeviceGetCount(a->count);
    n = vgcd_devmap_count(s);
    if (res == CUDA_SUCCESS && *a->count > n) {
        *a->count = n;
    }
    return res;
}

/* The ordinal is a device number like any CUdevice argument; the result
 * is mapped back by the dispatcher. */
CUresult vgcd_cuDeviceGet(struct vgcd_session *s, struct vgcd_args_cuDeviceGet *a)
{
    CUdevice dev = a->ordinal;
    CUresult res;

    if (!s->exec->ops.cuDeviceGet) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    /* Uninitialised first: the executor's own answer to that. */
    res = s->exec->ops.cuDeviceGet(a->device, 0);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = vgcd_devmap_in(s, &dev);
    return res == CUDA_SUCCESS ? s->exec->ops.cuDeviceGet(a->device, dev) : res;
}

/* ---- primary contexts: a release to zero or a reset frees its objects ---- */

static CUresult manual_primary_ctx_forget(struct vgcd_session *s, CUdevice dev,
                                          CUresult (*op)(CUdevice), bool always)
{
    struct vgc_exec_ops *ops = &s->exec->ops;
    CUcontext ctx = NULL;
    unsigned int flags;
    int active = 1;
    uint64_t id;
    CUresult res;

    if (!op) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    /* Learn the primary context's object without changing its count. */
    if (ops->cuDevicePrimaryCtxRetain &&
        ops->cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS && ops->cuDevicePrimaryCtxRelease_v2) {
        ops->cuDevicePrimaryCtxRelease_v2(dev);
    }
    res = op(dev);
    if (res != CUDA_SUCCESS || !ctx) {
        return res;
    }
    if (!always && ops->cuDevicePrimaryCtxGetState) {
        ops->cuDevicePrimaryCtxGetState(dev, &flags, &active);
    }
    if ((always || !active) &&
        vgcd_handle_put(s, VGC_HANDLE_CTX, ctx, 0, &id) == CUDA_SUCCESS) {
        vgcd_handle_drop_children(s, id);
    }
    return CUDA_SUCCESS;
}

CUresult vgcd_cuDevicePrimaryCtxRelease(struct vgcd_session *s,
                                        struct vgcd_args_cuDevicePrimaryCtxRelease *a)
{
    return manual_primary_ctx_forget(s, a->dev, s->exec->ops.cuDevicePrimaryCtxRelease, false);
}

CUresult vgcd_cuDevicePrimaryCtxRelease_v2(struct vgcd_session *s,
                                           struct vgcd_args_cuDevicePrimaryCtxRelease_v2 *a)
{
    return manual_primary_ctx_forget(s, a->dev, s->exec->ops.cuDevicePrimaryCtxRelease_v2, false);
}

CUresult vgcd_cuDevicePrimaryCtxReset(struct vgcd_session *s,
                                      struct vgcd_args_cuDevicePrimaryCtxReset *a)
{
    return manual_primary_ctx_forget(s, a->dev, s->exec->ops.cuDevicePrimaryCtxReset, true);
}

CUresult vgcd_cuDevicePrimaryCtxReset_v2(struct vgcd_session *s,
                                         struct vgcd_args_cuDevicePrimaryCtxReset_v2 *a)
{
    return manual_primary_ctx_forget(s, a->dev, s->exec->ops.cuDevicePrimaryCtxReset_v2, true);
}

/*
 * The current context is the guest's business (every frame names it), so
 * the executor's own context stack is kept at most one deep: undo the push
 * that creating a context does.
 */
CUresult vgcd_cuCtxCreate_v2(struct vgcd_session *s, struct vgcd_args_cuCtxCreate_v2 *a)
{
    struct vgc_exec_ops *ops = &s->exec->ops;
    CUcontext popped;
    CUresult res;

    if (!ops->cuCtxCreate_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = ops->cuCtxCreate_v2(a->pctx, a->flags, a->dev);
    if (res == CUDA_SUCCESS && ops->cuCtxPopCurrent_v2) {
        ops->cuCtxPopCurrent_v2(&popped);
    }
    if (res == CUDA_SUCCESS) {
        vgcd_status_ctx_created(s, *a->pctx, a->dev);   /* NVML lists it there */
    }
    return res;
}

/*
 * Limits added after an executor was written: the CIG limits describe
 * contexts created with CIG parameters, which the shim never creates, so
 * for any context the driver's answer is "not a CIG context".  cuBLASLt
 * asks at start-up and treats a failure as an unusable context.
 */
CUresult vgcd_cuCtxGetLimit(struct vgcd_session *s, struct vgcd_args_cuCtxGetLimit *a)
{
    CUresult res = s->exec->ops.cuCtxGetLimit ? s->exec->ops.cuCtxGetLimit(a->pvalue, a->limit)
                                              : CUDA_ERROR_NOT_SUPPORTED;

    if (res == CUDA_ERROR_UNSUPPORTED_LIMIT &&
        (a->limit == CU_LIMIT_CIG_ENABLED || a->limit == CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED)) {
        *a->pvalue = 0;
        res = CUDA_SUCCESS;
    }
    return res;
}

/* ---- images ------------------------------------------------------------- */

/*
 * The image bytes are either the image itself or a reference to one in the
 * daemon's image cache (image_cache.h), sent once the guest learned that the
 * cache holds it.  *mapped says whether vgcd_image_unmap() must follow.
 */
static CUresult manual_image(const void *data, uint64_t len, const void **image,
                             size_t *size, bool *mapped)
{
    CUresult res;

    *mapped = false;
    if (!data || !len) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    res = vgcd_image_resolve(data, (size_t)len, image, size);
    if (res == CUDA_ERROR_NOT_FOUND) {
        *image = data;
        *size = (size_t)len;
        return CUDA_SUCCESS;
    }
    *mapped = res == CUDA_SUCCESS;
    return res;
}

CUresult vgcd_cuModuleLoadData(struct vgcd_session *s, struct vgcd_args_cuModuleLoadData *a)
{
    const void *image;
    size_t size;
    bool mapped;
    CUresult res;

    if (!s->exec->module_load) {
        return a->data && a->data_len ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_IMAGE;
    }
    res = manual_image(a->data, a->data_len, &image, &size, &mapped);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = s->exec->module_load(a->module, image, size);
    if (mapped) {
        vgcd_image_unmap(image, size);
    }
    return res;
}

CUresult vgcd_cuLibraryLoadData(struct vgcd_session *s, struct vgcd_args_cuLibraryLoadData *a)
{
    const void *image;
    size_t size;
    bool mapped;
    CUresult res;

    if (!s->exec->library_load) {
        return a->data && a->data_len ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_IMAGE;
    }
    res = manual_image(a->data, a->data_len, &image, &size, &mapped);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = s->exec->library_load(a->library, image, size);
    if (mapped) {
        vgcd_image_unmap(image, size);
    }
    return res;
}

/* ---- 2D copies ------------------------------------------------------------ */

/*
 * The guest sends host ends packed: rows of WidthInBytes at pitch
 * WidthInBytes from origin 0,0, in toDevice (source) or toHost (target).
 * Point the copy at those buffers after checking they are exactly that big;
 * array ends carry the guest's handle, swapped for the executor's here
 * (manual_array.c); device ends and every extent are left to the executor,
 * which checks every row.
 */
static CUresult manual_copy2d_prepare(struct vgcd_session *s, CUDA_MEMCPY2D *c,
                                      const void *in, uint64_t in_len,
                                      void *out, uint64_t out_len)
{
    uint64_t bytes;
    CUresult res;

    if (c->WidthInBytes && c->Height > UINT64_MAX / c->WidthInBytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    bytes = (uint64_t)c->WidthInBytes * c->Height;
    if (c->srcMemoryType == CU_MEMORYTYPE_HOST) {
        if (in_len != bytes || c->srcXInBytes || c->srcY || c->srcPitch != c->WidthInBytes) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        c->srcHost = in;
    } else if ((c->srcMemoryType != CU_MEMORYTYPE_DEVICE &&
                c->srcMemoryType != CU_MEMORYTYPE_ARRAY) || in_len) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (c->dstMemoryType == CU_MEMORYTYPE_HOST) {
        if (out_len != bytes || c->dstXInBytes || c->dstY || c->dstPitch != c->WidthInBytes) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        c->dstHost = out;
    } else if ((c->dstMemoryType != CU_MEMORYTYPE_DEVICE &&
                c->dstMemoryType != CU_MEMORYTYPE_ARRAY) || out_len) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY) {
        res = vgcd_array_in(s, &c->srcArray);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    } else {
        c->srcArray = NULL;
    }
    if (c->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
        res = vgcd_array_in(s, &c->dstArray);
        if (res != CUDA_SUCCESS) {
            return res;
        }
    } else {
        c->dstArray = NULL;
    }
    /* A guest's host pointers mean nothing here. */
    if (c->srcMemoryType != CU_MEMORYTYPE_HOST) {
        c->srcHost = NULL;
    }
    if (c->dstMemoryType != CU_MEMORYTYPE_HOST) {
        c->dstHost = NULL;
    }
    return CUDA_SUCCESS;
}

CUresult vgcd_cuMemcpy2D_v2(struct vgcd_session *s, struct vgcd_args_cuMemcpy2D_v2 *a)
{
    CUresult res = manual_copy2d_prepare(s, &a->pCopy_val, a->toDevice, a->toDevice_len,
                                         a->toHost, a->toHost_len);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemcpy2D_v2 ? s->exec->ops.cuMemcpy2D_v2(&a->pCopy_val)
                                      : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgcd_cuMemcpy2DUnaligned_v2(struct vgcd_session *s,
                                     struct vgcd_args_cuMemcpy2DUnaligned_v2 *a)
{
    CUresult res = manual_copy2d_prepare(s, &a->pCopy_val, a->toDevice, a->toDevice_len,
                                         a->toHost, a->toHost_len);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemcpy2DUnaligned_v2 ?
           s->exec->ops.cuMemcpy2DUnaligned_v2(&a->pCopy_val) : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgcd_cuMemcpy2DAsync_v2(struct vgcd_session *s,
                                 struct vgcd_args_cuMemcpy2DAsync_v2 *a)
{
    CUresult res = manual_copy2d_prepare(s, &a->pCopy_val, a->toDevice, a->toDevice_len,
                                         a->toHost, a->toHost_len);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuMemcpy2DAsync_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuMemcpy2DAsync_v2(&a->pCopy_val, a->hStream);
    /* toHost is sent back with this reply: the copy must have happened. */
    if (res == CUDA_SUCCESS && a->pCopy_val.dstMemoryType == CU_MEMORYTYPE_HOST &&
        s->exec->ops.cuStreamSynchronize) {
        res = s->exec->ops.cuStreamSynchronize(a->hStream);
    }
    return res;
}

/* ---- launches ------------------------------------------------------------ */

CUresult vgcd_cuLaunchKernel(struct vgcd_session *s, struct vgcd_args_cuLaunchKernel *a)
{
    size_t size = a->params_len;
    /* The packed buffer goes through the driver's own `extra` form, so the
     * host never turns guest bytes into pointers. */
    void *extra[] = {
        CU_LAUNCH_PARAM_BUFFER_POINTER, (void *)a->params,
        CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
        CU_LAUNCH_PARAM_END,
    };
    static const unsigned char none[8];

    if (!s->exec->ops.cuLaunchKernel) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!a->params) {
        extra[1] = (void *)none;
    }
    return s->exec->ops.cuLaunchKernel(a->f, a->gridDimX, a->gridDimY, a->gridDimZ,
                                       a->blockDimX, a->blockDimY, a->blockDimZ,
                                       a->sharedMemBytes, a->hStream, NULL, extra);
}

/* ---- pointer attributes ---------------------------------------------------- */

CUresult vgcd_cuPointerGetAttribute(struct vgcd_session *s,
                                    struct vgcd_args_cuPointerGetAttribute *a)
{
    size_t want = vgc_pointer_attribute_size(a->attribute);
    /* The reply buffer has no alignment to speak of; the executor writes
     * typed values, so it writes here first. */
    uint64_t value[4] = { 0 };
    CUresult res;

    if (!want || a->data_len != want || want > sizeof(value)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!s->exec->ops.cuPointerGetAttribute) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuPointerGetAttribute(value, a->attribute, a->ptr);
    if (res == CUDA_SUCCESS && a->attribute == CU_POINTER_ATTRIBUTE_CONTEXT) {
        /* The guest must see its handle, never the executor's pointer. */
        CUcontext ctx;
        uint64_t id = 0;
        memcpy(&ctx, value, sizeof(ctx));
        if (ctx) {
            res = vgcd_handle_put(s, VGC_HANDLE_CTX, ctx, 0, &id);
        }
        value[0] = id;
    }
    if (res == CUDA_SUCCESS && a->attribute == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) {
        /* Memory lives in a context, so on a bound virtual GPU. */
        CUdevice dev;
        memcpy(&dev, value, sizeof(dev));
        res = vgcd_devmap_out(s, &dev);
        memcpy(value, &dev, sizeof(dev));
    }
    if (res == CUDA_SUCCESS) {
        memcpy(a->data, value, want);
    }
    return res;
}

/* ---- linking: options tune the host's JIT; none of them travels ---------- */

CUresult vgcd_cuLinkCreate_v2(struct vgcd_session *s, struct vgcd_args_cuLinkCreate_v2 *a)
{
    if (!s->exec->ops.cuLinkCreate_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return s->exec->ops.cuLinkCreate_v2(0, NULL, NULL, a->stateOut);
}

CUresult vgcd_cuLinkAddData_v2(struct vgcd_session *s, struct vgcd_args_cuLinkAddData_v2 *a)
{
    if (!s->exec->ops.cuLinkAddData_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return s->exec->ops.cuLinkAddData_v2(a->state, a->type, (void *)a->data, a->data_len,
                                         a->name, 0, NULL, NULL);
}

/*
 * The linked image goes back in the reply, as long as it is: the guest
 * keeps its own copy until cuLinkDestroy, as the driver's stays valid.
 */
CUresult vgcd_cuLinkComplete(struct vgcd_session *s, struct vgcd_args_cuLinkComplete *a)
{
    void *image = NULL;
    size_t size = 0;
    CUresult res;

    if (!s->exec->ops.cuLinkComplete) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuLinkComplete(a->state, &image, &size);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!image || size > a->image_len) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(a->image, image, size);
    a->image_len = size;
    *a->sizeOut = size;
    return CUDA_SUCCESS;
}
