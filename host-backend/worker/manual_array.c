/*
 * manual_array.c - the worker's side of CUDA arrays, texture objects and
 * surface objects: the handles that hide inside structs.
 *
 * An array is an ordinary handle (VGC_HANDLE_ARRAY) when it is a parameter,
 * and so is a mipmapped array (VGC_HANDLE_MIPMAP, which owns the arrays of
 * its levels), but copies and resource descriptions carry them inside
 * CUDA_MEMCPY2D/3D and CUDA_RESOURCE_DESC, which travel as raw bytes: the guest puts its handle
 * id there and these handlers swap in the executor's object, so a guest can
 * only ever name an array of its own that is still alive.
 *
 * Texture and surface objects are different: a kernel reads them from its
 * parameters, which the worker never interprets, so the guest must hold
 * the executor's own value.  The session still records every one it
 * created (kinds TEXOBJ/SURFOBJ, found by value), and destroying or
 * querying one it did not create fails here, before the executor sees it.
 * A kernel handed a value it does not own is the executor's to refuse (the
 * cpu executor looks values up per context; a GPU's are per context too).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "vgc_host_args.h"
#include "manual_array.h"
#include "session.h"

CUresult vgcd_array_in(struct vgcd_session *s, CUarray *h)
{
    void *obj = NULL;
    CUresult res = vgcd_handle_get(s, (uint64_t)(uintptr_t)*h, VGC_HMASK(VGC_HANDLE_ARRAY), &obj);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!obj) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *h = obj;
    return CUDA_SUCCESS;
}

/* ---- 3D copies -------------------------------------------------------------- */

/*
 * Like 2D copies (manual.c), host ends arrive packed: WidthInBytes x Height
 * x Depth bytes, rows and slices back to back, from origin 0,0,0.  Array
 * ends carry the guest's handle.  The executor checks device addresses and
 * every extent against the array.
 */
static CUresult copy3d_prepare(struct vgcd_session *s, CUDA_MEMCPY3D *c, const void *in,
                               uint64_t in_len, void *out, uint64_t out_len)
{
    uint64_t bytes;
    CUresult res;

    if (c->WidthInBytes && c->Height > UINT64_MAX / c->WidthInBytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    bytes = (uint64_t)c->WidthInBytes * c->Height;
    if (bytes && c->Depth > UINT64_MAX / bytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    bytes *= c->Depth;
    if (c->reserved0 || c->reserved1 || c->srcLOD || c->dstLOD) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (c->srcMemoryType) {
    case CU_MEMORYTYPE_HOST:
        if (in_len != bytes || c->srcXInBytes || c->srcY || c->srcZ) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        c->srcHost = in;
        c->srcPitch = c->WidthInBytes;
        c->srcHeight = c->Height;
        break;
    case CU_MEMORYTYPE_ARRAY:
        res = vgcd_array_in(s, &c->srcArray);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        /* fall through */
    case CU_MEMORYTYPE_DEVICE:
        if (in_len) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (c->dstMemoryType) {
    case CU_MEMORYTYPE_HOST:
        if (out_len != bytes || c->dstXInBytes || c->dstY || c->dstZ) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        c->dstHost = out;
        c->dstPitch = c->WidthInBytes;
        c->dstHeight = c->Height;
        break;
    case CU_MEMORYTYPE_ARRAY:
        res = vgcd_array_in(s, &c->dstArray);
        if (res != CUDA_SUCCESS) {
            return res;
        }
        /* fall through */
    case CU_MEMORYTYPE_DEVICE:
        if (out_len) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* Whatever else the guest left in the struct means nothing here. */
    if (c->srcMemoryType != CU_MEMORYTYPE_ARRAY) {
        c->srcArray = NULL;
    }
    if (c->dstMemoryType != CU_MEMORYTYPE_ARRAY) {
        c->dstArray = NULL;
    }
    if (c->srcMemoryType != CU_MEMORYTYPE_HOST) {
        c->srcHost = NULL;
    }
    if (c->dstMemoryType != CU_MEMORYTYPE_HOST) {
        c->dstHost = NULL;
    }
    if (c->srcMemoryType != CU_MEMORYTYPE_DEVICE) {
        c->srcDevice = 0;
    }
    if (c->dstMemoryType != CU_MEMORYTYPE_DEVICE) {
        c->dstDevice = 0;
    }
    return CUDA_SUCCESS;
}

CUresult vgcd_cuMemcpy3D_v2(struct vgcd_session *s, struct vgcd_args_cuMemcpy3D_v2 *a)
{
    CUresult res = copy3d_prepare(s, &a->pCopy_val, a->toDevice, a->toDevice_len,
                                  a->toHost, a->toHost_len);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuMemcpy3D_v2 ? s->exec->ops.cuMemcpy3D_v2(&a->pCopy_val)
                                      : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgcd_cuMemcpy3DAsync_v2(struct vgcd_session *s, struct vgcd_args_cuMemcpy3DAsync_v2 *a)
{
    CUresult res = copy3d_prepare(s, &a->pCopy_val, a->toDevice, a->toDevice_len,
                                  a->toHost, a->toHost_len);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuMemcpy3DAsync_v2) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuMemcpy3DAsync_v2(&a->pCopy_val, a->hStream);
    /* toHost goes back with this reply: the copy must have happened. */
    if (res == CUDA_SUCCESS && a->pCopy_val.dstMemoryType == CU_MEMORYTYPE_HOST &&
        s->exec->ops.cuStreamSynchronize) {
        res = s->exec->ops.cuStreamSynchronize(a->hStream);
    }
    return res;
}

/* ---- resource descriptions ------------------------------------------------- */

static CUresult resdesc_in(struct vgcd_session *s, CUDA_RESOURCE_DESC *rd)
{
    switch (rd->resType) {
    case CU_RESOURCE_TYPE_ARRAY:
        return vgcd_array_in(s, &rd->res.array.hArray);
    case CU_RESOURCE_TYPE_LINEAR:
    case CU_RESOURCE_TYPE_PITCH2D:
        return CUDA_SUCCESS;    /* device addresses: the executor checks them */
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY: {
        void *obj = NULL;
        CUresult res = vgcd_handle_get(s, (uint64_t)(uintptr_t)rd->res.mipmap.hMipmappedArray,
                                       VGC_HMASK(VGC_HANDLE_MIPMAP), &obj);

        if (res == CUDA_SUCCESS && !obj) {
            res = CUDA_ERROR_INVALID_VALUE;
        }
        rd->res.mipmap.hMipmappedArray = obj;
        return res;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* The executor's array back to the guest's handle (0 once destroyed). */
static void resdesc_out(struct vgcd_session *s, CUDA_RESOURCE_DESC *rd)
{
    uint64_t id = 0;

    if (rd->resType == CU_RESOURCE_TYPE_ARRAY) {
        if (vgcd_handle_find(s, VGC_HANDLE_ARRAY, rd->res.array.hArray, &id) != CUDA_SUCCESS) {
            id = 0;
        }
        rd->res.array.hArray = (CUarray)(uintptr_t)id;
    } else if (rd->resType == CU_RESOURCE_TYPE_MIPMAPPED_ARRAY) {
        if (vgcd_handle_find(s, VGC_HANDLE_MIPMAP, rd->res.mipmap.hMipmappedArray,
                             &id) != CUDA_SUCCESS) {
            id = 0;
        }
        rd->res.mipmap.hMipmappedArray = (CUmipmappedArray)(uintptr_t)id;
    }
}

/* ---- texture objects --------------------------------------------------------- */

CUresult vgcd_cuTexObjectCreate(struct vgcd_session *s, struct vgcd_args_cuTexObjectCreate *a)
{
    CUresult res;
    uint64_t id;

    if (!s->exec->ops.cuTexObjectCreate) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = resdesc_in(s, &a->pResDesc_val);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = s->exec->ops.cuTexObjectCreate(a->pTexObject, a->pResDesc, a->pTexDesc,
                                         a->pResViewDesc);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    /* Owned by the current context: gone from the table when it is. */
    res = vgcd_handle_put(s, VGC_HANDLE_TEXOBJ, (void *)(uintptr_t)*a->pTexObject,
                          s->ctx_id, &id);
    if (res != CUDA_SUCCESS && s->exec->ops.cuTexObjectDestroy) {
        s->exec->ops.cuTexObjectDestroy(*a->pTexObject);
    }
    return res;
}

CUresult vgcd_cuTexObjectDestroy(struct vgcd_session *s, struct vgcd_args_cuTexObjectDestroy *a)
{
    uint64_t id;
    CUresult res = vgcd_handle_find(s, VGC_HANDLE_TEXOBJ, (void *)(uintptr_t)a->texObject, &id);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuTexObjectDestroy) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuTexObjectDestroy(a->texObject);
    if (res == CUDA_SUCCESS) {
        vgcd_handle_drop(s, id);
    }
    return res;
}

CUresult vgcd_cuTexObjectGetResourceDesc(struct vgcd_session *s,
                                         struct vgcd_args_cuTexObjectGetResourceDesc *a)
{
    uint64_t id;
    CUresult res = vgcd_handle_find(s, VGC_HANDLE_TEXOBJ, (void *)(uintptr_t)a->texObject, &id);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuTexObjectGetResourceDesc) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuTexObjectGetResourceDesc(a->pResDesc, a->texObject);
    if (res == CUDA_SUCCESS) {
        resdesc_out(s, a->pResDesc);
    }
    return res;
}

CUresult vgcd_cuTexObjectGetTextureDesc(struct vgcd_session *s,
                                        struct vgcd_args_cuTexObjectGetTextureDesc *a)
{
    uint64_t id;
    CUresult res = vgcd_handle_find(s, VGC_HANDLE_TEXOBJ, (void *)(uintptr_t)a->texObject, &id);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    return s->exec->ops.cuTexObjectGetTextureDesc ?
           s->exec->ops.cuTexObjectGetTextureDesc(a->pTexDesc, a->texObject) :
           CUDA_ERROR_NOT_SUPPORTED;
}

/* ---- surface objects ----------------------------------------------------------- */

CUresult vgcd_cuSurfObjectCreate(struct vgcd_session *s, struct vgcd_args_cuSurfObjectCreate *a)
{
    CUresult res;
    uint64_t id;

    if (!s->exec->ops.cuSurfObjectCreate) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (a->pResDesc_val.resType != CU_RESOURCE_TYPE_ARRAY) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    res = resdesc_in(s, &a->pResDesc_val);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = s->exec->ops.cuSurfObjectCreate(a->pSurfObject, a->pResDesc);
    if (res != CUDA_SUCCESS) {
        return res;
    }
    res = vgcd_handle_put(s, VGC_HANDLE_SURFOBJ, (void *)(uintptr_t)*a->pSurfObject,
                          s->ctx_id, &id);
    if (res != CUDA_SUCCESS && s->exec->ops.cuSurfObjectDestroy) {
        s->exec->ops.cuSurfObjectDestroy(*a->pSurfObject);
    }
    return res;
}

CUresult vgcd_cuSurfObjectDestroy(struct vgcd_session *s, struct vgcd_args_cuSurfObjectDestroy *a)
{
    uint64_t id;
    CUresult res = vgcd_handle_find(s, VGC_HANDLE_SURFOBJ, (void *)(uintptr_t)a->surfObject, &id);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuSurfObjectDestroy) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuSurfObjectDestroy(a->surfObject);
    if (res == CUDA_SUCCESS) {
        vgcd_handle_drop(s, id);
    }
    return res;
}

CUresult vgcd_cuSurfObjectGetResourceDesc(struct vgcd_session *s,
                                          struct vgcd_args_cuSurfObjectGetResourceDesc *a)
{
    uint64_t id;
    CUresult res = vgcd_handle_find(s, VGC_HANDLE_SURFOBJ, (void *)(uintptr_t)a->surfObject, &id);

    if (res != CUDA_SUCCESS) {
        return res;
    }
    if (!s->exec->ops.cuSurfObjectGetResourceDesc) {
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    res = s->exec->ops.cuSurfObjectGetResourceDesc(a->pResDesc, a->surfObject);
    if (res == CUDA_SUCCESS) {
        resdesc_out(s, a->pResDesc);
    }
    return res;
}
