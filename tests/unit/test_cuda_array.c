/*
 * test_cuda_array.c - the cuda executor's arrays over a mock driver:
 * creating one reserves its bytes in the pool before the driver is asked,
 * a refusal (pool full, driver error) leaves the pool as it was, and
 * destroying it gives them back.  Texture and surface objects need no
 * wrapping: they pass straight through.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "pool.h"
#include "unit_check.h"

static int m_live, m_fail_next;
static uintptr_t m_next = 0x1000;

static CUresult m_ok(void)
{
    return CUDA_SUCCESS;
}

static CUresult m_init(unsigned int flags)
{
    (void)flags;
    return m_ok();
}

static CUresult m_ctx_get_device(CUdevice *dev)
{
    *dev = 0;
    return CUDA_SUCCESS;
}

static CUresult m_mem_alloc(CUdeviceptr *p, size_t n)
{
    (void)p;
    (void)n;
    return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult m_mem_free(CUdeviceptr p)
{
    (void)p;
    return CUDA_SUCCESS;
}

static CUresult m_range(CUdeviceptr *b, size_t *s, CUdeviceptr p)
{
    (void)b;
    (void)s;
    (void)p;
    return CUDA_ERROR_NOT_FOUND;
}

static CUresult m_info(size_t *f, size_t *t)
{
    *f = *t = 1 << 30;
    return CUDA_SUCCESS;
}

static CUresult m_memcpy(CUdeviceptr d, CUdeviceptr s, size_t n)
{
    (void)d;
    (void)s;
    (void)n;
    return CUDA_SUCCESS;
}

static CUresult m_memcpy_async(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st)
{
    (void)st;
    return m_memcpy(d, s, n);
}

static CUresult m_create(CUarray *out, const CUDA_ARRAY_DESCRIPTOR *d)
{
    (void)d;
    if (m_fail_next) {
        m_fail_next = 0;
        return CUDA_ERROR_INVALID_VALUE;
    }
    *out = (CUarray)(m_next += 0x100);
    m_live++;
    return CUDA_SUCCESS;
}

static CUresult m_create3(CUarray *out, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    (void)d;
    return m_create(out, NULL);
}

static CUresult m_destroy(CUarray a)
{
    if (!a) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    m_live--;
    return CUDA_SUCCESS;
}

static CUresult m_mip_create(CUmipmappedArray *out, const CUDA_ARRAY3D_DESCRIPTOR *d,
                             unsigned int n)
{
    (void)d;
    (void)n;
    *out = (CUmipmappedArray)(m_next += 0x100);
    m_live++;
    return CUDA_SUCCESS;
}

static CUresult m_mip_destroy(CUmipmappedArray m)
{
    (void)m;
    m_live--;
    return CUDA_SUCCESS;
}

static const struct vgc_exec_ops mock_driver = {
    .cuInit = m_init,
    .cuCtxGetDevice = m_ctx_get_device,
    .cuMemAlloc_v2 = m_mem_alloc,
    .cuMemFree_v2 = m_mem_free,
    .cuMemGetAddressRange_v2 = m_range,
    .cuMemGetInfo_v2 = m_info,
    .cuMemcpy = m_memcpy,
    .cuMemcpyAsync = m_memcpy_async,
    .cuArrayCreate_v2 = m_create,
    .cuArray3DCreate_v2 = m_create3,
    .cuArrayDestroy = m_destroy,
    .cuMipmappedArrayCreate = m_mip_create,
    .cuMipmappedArrayDestroy = m_mip_destroy,
};

int main(void)
{
    struct vgc_pool *pool = vgc_pool_create(1, 4u << 20, 4);
    struct vgc_executor_config cfg = { .ndevices = 1, .pool = pool };
    CUDA_ARRAY3D_DESCRIPTOR d = { .Width = 1024, .Height = 256, .Format = CU_AD_FORMAT_FLOAT,
                                  .NumChannels = 1 };
    CUDA_ARRAY_DESCRIPTOR d1 = { .Width = 100, .Format = CU_AD_FORMAT_UNSIGNED_INT8,
                                 .NumChannels = 2 };
    struct vgc_executor *ex;
    char *err = NULL;
    struct vgc_tenant me = { .kind = VGC_TENANT_UID };
    CUarray a, b, c;

    CHECK(pool != NULL, "a pool of 4 MiB");
    if (!pool) {
        return unit_done();
    }
    vgc_pool_bind(pool, vgc_pool_slot_claim(pool, &me));
    ex = vgc_cuda_executor_over(&cfg, &mock_driver, &err);
    CHECK(ex != NULL, "vgc_cuda_executor_over: %s", err ? err : "?");
    if (!ex) {
        return unit_done();
    }
    CHECK(ex->ops.cuArray3DCreate_v2(&a, &d) == CUDA_SUCCESS, "a 1024x256 float array");
    CHECK(vgc_pool_used(pool, 0) == 1u << 20, "1 MiB reserved (%llu)",
          (unsigned long long)vgc_pool_used(pool, 0));
    CHECK(ex->ops.cuArrayCreate_v2(&b, &d1) == CUDA_SUCCESS, "a 1D uchar2 array");
    CHECK(vgc_pool_used(pool, 0) == (1u << 20) + (64u << 10),
          "its 200 bytes count as 64 KiB");
    d.Depth = 3;
    CHECK(ex->ops.cuArray3DCreate_v2(&c, &d) == CUDA_ERROR_OUT_OF_MEMORY,
          "3 MiB more does not fit: CUDA_ERROR_OUT_OF_MEMORY");
    CHECK(m_live == 2, "and the driver was not asked");
    d.Depth = 0;
    m_fail_next = 1;
    CHECK(ex->ops.cuArray3DCreate_v2(&c, &d) == CUDA_ERROR_INVALID_VALUE,
          "the driver refuses one");
    CHECK(vgc_pool_used(pool, 0) == (1u << 20) + (64u << 10), "its bytes are given back");
    d.Width = 1u << 30;
    CHECK(ex->ops.cuArray3DCreate_v2(&c, &d) == CUDA_ERROR_INVALID_VALUE,
          "an absurd width is refused before the pool");
    CHECK(ex->ops.cuArrayDestroy(a) == CUDA_SUCCESS, "destroy the first");
    CHECK(vgc_pool_used(pool, 0) == 64u << 10, "its 1 MiB is back");
    CHECK(ex->ops.cuArrayDestroy(NULL) == CUDA_ERROR_INVALID_HANDLE,
          "a failed destroy releases nothing");
    CHECK(ex->ops.cuArrayDestroy(b) == CUDA_SUCCESS, "destroy the second");
    CHECK(vgc_pool_used(pool, 0) == 0 && m_live == 0, "pool and driver empty");
    {
        CUDA_ARRAY3D_DESCRIPTOR md = { .Width = 1024, .Height = 512, .Format = CU_AD_FORMAT_FLOAT,
                                       .NumChannels = 1 };
        CUmipmappedArray mm;

        /* 2 MiB + 512 KiB + 128 KiB + 32 KiB (rounded to 64 KiB) */
        CHECK(ex->ops.cuMipmappedArrayCreate(&mm, &md, 4) == CUDA_SUCCESS,
              "a mipmapped array of 4 levels");
        CHECK(vgc_pool_used(pool, 0) == (2u << 20) + (512u << 10) + (128u << 10) + (64u << 10),
              "all its levels counted (%llu)", (unsigned long long)vgc_pool_used(pool, 0));
        CHECK(ex->ops.cuMipmappedArrayDestroy(mm) == CUDA_SUCCESS, "destroy it");
        CHECK(vgc_pool_used(pool, 0) == 0 && m_live == 0, "given back");
    }
    ex->destroy();
    vgc_pool_destroy(pool);
    return unit_done();
}
