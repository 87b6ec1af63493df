/*
 * cuda_array.c - CUDA arrays on the real driver, counted in the pool.
 *
 * Everything else about arrays, texture and surface objects passes
 * straight to the driver (the worker has already swapped guest array
 * handles for the driver's, and texture objects are the driver's values),
 * but an array is device memory the tenant's budget must see, as
 * cuMemAlloc's is: creating one (or a mipmapped array: all its levels)
 * reserves its size in the pool first, and destroying it releases that.  The size is the elements' bytes rounded
 * up to 64 KiB (the driver's layout is its own; this is the order of
 * its padding).  An array whose context is destroyed without
 * cuArrayDestroy stays counted until the worker exits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_array.h"
#include "executor.h"
#include "pool.h"

#define CUDA_ARRAY_ROUND (64u << 10)

struct cuda_array_rec {
    void *h;                    /* CUarray or CUmipmappedArray */
    int dev;
    uint64_t bytes;
};

static const struct vgc_exec_ops *ca_real;
static struct vgc_pool *ca_pool;
static int (*ca_dev_of)(void);
static struct cuda_array_rec *ca_recs;
static size_t ca_n, ca_cap;

/* Bytes to charge for @d, 0 when the sum does not fit (the driver refuses
 * such an array anyway). */
static uint64_t ca_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    unsigned channel = vgc_array_format_bytes(d->Format);
    uint64_t n = (uint64_t)(channel ? channel : 4) * (d->NumChannels ? d->NumChannels : 1);
    uint64_t dims[3] = { d->Width, d->Height ? d->Height : 1, d->Depth ? d->Depth : 1 };

    for (int i = 0; i < 3; i++) {
        if (dims[i] > (1u << 20) || n > UINT64_MAX / (1u << 20)) {
            return 0;
        }
        n *= dims[i];
    }
    return (n + CUDA_ARRAY_ROUND - 1) / CUDA_ARRAY_ROUND * CUDA_ARRAY_ROUND;
}

/* Room for one more record. */
static bool ca_room(void)
{
    if (ca_n == ca_cap) {
        size_t cap = ca_cap ? ca_cap * 2 : 16;
        struct cuda_array_rec *v = realloc(ca_recs, cap * sizeof(*v));

        if (!v) {
            return false;
        }
        ca_recs = v;
        ca_cap = cap;
    }
    return true;
}

/* Forget @h's record, giving its bytes back. */
static void ca_forget(void *h)
{
    for (size_t i = 0; i < ca_n; i++) {
        if (ca_recs[i].h == h) {
            vgc_pool_release(ca_pool, ca_recs[i].dev, ca_recs[i].bytes);
            ca_recs[i] = ca_recs[--ca_n];
            return;
        }
    }
}

static CUresult ca_create(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d,
                          const CUDA_ARRAY_DESCRIPTOR *d2)
{
    CUDA_ARRAY3D_DESCRIPTOR full;
    int dev = ca_dev_of();
    uint64_t bytes;
    CUresult res;

    if (!out || (!d && !d2)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (d2) {
        memset(&full, 0, sizeof(full));
        full.Width = d2->Width;
        full.Height = d2->Height;
        full.Format = d2->Format;
        full.NumChannels = d2->NumChannels;
        d = &full;
    }
    bytes = ca_bytes(d);
    if (bytes == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!ca_room()) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!vgc_pool_reserve(ca_pool, dev, bytes)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = d2 ? ca_real->cuArrayCreate_v2(out, d2) : ca_real->cuArray3DCreate_v2(out, d);
    if (res != CUDA_SUCCESS) {
        vgc_pool_release(ca_pool, dev, bytes);
        return res;
    }
    ca_recs[ca_n++] = (struct cuda_array_rec){ .h = *out, .dev = dev, .bytes = bytes };
    return CUDA_SUCCESS;
}

static CUresult ca_array_create(CUarray *out, const CUDA_ARRAY_DESCRIPTOR *d)
{
    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return ca_create(out, NULL, d);
}

static CUresult ca_array_3d_create(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    return ca_create(out, d, NULL);
}

static CUresult ca_array_destroy(CUarray h)
{
    CUresult res = ca_real->cuArrayDestroy(h);

    if (res == CUDA_SUCCESS) {
        ca_forget(h);
    }
    return res;
}

/* A mipmapped array: its levels' bytes, each level's extents halved
 * (at least 1; layers stay), counted as one record. */
static CUresult ca_mipmap_create(CUmipmappedArray *out, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                 unsigned int nlevels)
{
    int dev = ca_dev_of();
    uint64_t bytes = 0;
    CUresult res;

    if (!out || !d || nlevels == 0 || nlevels > 32) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (unsigned l = 0; l < nlevels; l++) {
        CUDA_ARRAY3D_DESCRIPTOR ld = *d;
        uint64_t b;

        ld.Width = d->Width >> l ? d->Width >> l : 1;
        ld.Height = !d->Height ? 0 : d->Height >> l ? d->Height >> l : 1;
        if (!(d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP))) {
            ld.Depth = !d->Depth ? 0 : d->Depth >> l ? d->Depth >> l : 1;
        }
        b = ca_bytes(&ld);
        if (b == 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        bytes += b;
    }
    if (!ca_room()) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!vgc_pool_reserve(ca_pool, dev, bytes)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    res = ca_real->cuMipmappedArrayCreate(out, d, nlevels);
    if (res != CUDA_SUCCESS) {
        vgc_pool_release(ca_pool, dev, bytes);
        return res;
    }
    ca_recs[ca_n++] = (struct cuda_array_rec){ .h = *out, .dev = dev, .bytes = bytes };
    return CUDA_SUCCESS;
}

static CUresult ca_mipmap_destroy(CUmipmappedArray h)
{
    CUresult res = ca_real->cuMipmappedArrayDestroy(h);

    if (res == CUDA_SUCCESS) {
        ca_forget(h);
    }
    return res;
}

void cuda_array_setup(struct vgc_exec_ops *ops, const struct vgc_exec_ops *real,
                      struct vgc_pool *pool, int (*dev_of)(void))
{
    cuda_array_reset();
    if (!pool || !real->cuArrayDestroy) {
        return;
    }
    ca_real = real;
    ca_pool = pool;
    ca_dev_of = dev_of;
    ops->cuArrayCreate_v2 = real->cuArrayCreate_v2 ? ca_array_create : NULL;
    ops->cuArray3DCreate_v2 = real->cuArray3DCreate_v2 ? ca_array_3d_create : NULL;
    ops->cuArrayDestroy = ca_array_destroy;
    if (real->cuMipmappedArrayCreate && real->cuMipmappedArrayDestroy) {
        ops->cuMipmappedArrayCreate = ca_mipmap_create;
        ops->cuMipmappedArrayDestroy = ca_mipmap_destroy;
    }
}

void cuda_array_reset(void)
{
    free(ca_recs);
    ca_recs = NULL;
    ca_n = ca_cap = 0;
}
