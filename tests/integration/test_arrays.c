/*
 * test_arrays.c - CUDA arrays, texture and surface objects through the
 * driver API, over the wire.
 *
 *   - cuArrayCreate/cuArray3DCreate and their descriptors;
 *   - cuMemcpyHtoA/AtoH/DtoA/AtoD/AtoA (the shim's one-row 2D copies),
 *     cuMemcpy2D and cuMemcpy3D with array ends, larger than one request
 *     (slices and rows split across requests), and extents past an array;
 *   - handles: a freed array, a made-up id, a stream passed as an array,
 *     an array inside CUDA_MEMCPY2D/3D and CUDA_RESOURCE_DESC that is not
 *     the caller's all fail with CUDA_ERROR_INVALID_HANDLE and nothing
 *     else happens; texture and surface objects the session did not create
 *     cannot be destroyed or queried;
 *   - a mipmapped array's levels: one handle each, not destroyed alone,
 *     gone with it;
 *   - a context's arrays and objects go with it.
 * Data crosses the wire both ways and is compared byte for byte.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "check.h"

static void test_descriptors(void)
{
    CUDA_ARRAY_DESCRIPTOR d = { .Width = 17, .Height = 5, .Format = CU_AD_FORMAT_UNSIGNED_INT16,
                                .NumChannels = 2 }, q;
    CUDA_ARRAY3D_DESCRIPTOR d3 = { .Width = 4, .Height = 3, .Depth = 2,
                                   .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 4,
                                   .Flags = CUDA_ARRAY3D_SURFACE_LDST }, q3;
    CUarray a = NULL, b = NULL;

    CHECK_CU(cuArrayCreate(&a, &d));
    CHECK_CU(cuArrayGetDescriptor(&q, a));
    CHECK(q.Width == 17 && q.Height == 5 && q.Format == CU_AD_FORMAT_UNSIGNED_INT16 &&
          q.NumChannels == 2, "2D descriptor back");
    CHECK_CU(cuArray3DCreate(&b, &d3));
    CHECK_CU(cuArray3DGetDescriptor(&q3, b));
    CHECK_BYTES(&q3, &d3, sizeof(d3), "3D descriptor back");
    d.NumChannels = 3;
    EXPECT_CU(cuArrayCreate(&a, &d), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuArrayCreate(NULL, &d), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuArrayCreate(&a, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuArrayDestroy(b));
    EXPECT_CU(cuArrayDestroy(b), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuArray3DGetDescriptor(&q3, b), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuArrayDestroy(a));
}

static void test_row_copies(void)
{
    CUDA_ARRAY_DESCRIPTOR d = { .Width = 1000, .Height = 0, .Format = CU_AD_FORMAT_SIGNED_INT32,
                                .NumChannels = 1 };
    int32_t src[1000], back[1000];
    CUarray a = NULL, b = NULL;
    CUdeviceptr dp = 0;

    itest_fill(src, sizeof(src), 11);
    CHECK_CU(cuArrayCreate(&a, &d));
    CHECK_CU(cuArrayCreate(&b, &d));
    CHECK_CU(cuMemAlloc(&dp, sizeof(src)));
    CHECK_CU(cuMemcpyHtoA(a, 0, src, sizeof(src)));
    memset(back, 0, sizeof(back));
    CHECK_CU(cuMemcpyAtoH(back, a, 0, sizeof(back)));
    CHECK_BYTES(back, src, sizeof(src), "cuMemcpyHtoA, cuMemcpyAtoH");
    CHECK_CU(cuMemcpyAtoD(dp, a, 400, 1200));
    CHECK_CU(cuMemcpyDtoA(b, 2800, dp, 1200));
    CHECK_CU(cuMemcpyAtoA(b, 0, a, 0, 400));
    memset(back, 0, sizeof(back));
    CHECK_CU(cuMemcpyAtoH(back, b, 0, sizeof(back)));
    CHECK(memcmp(back, src, 400) == 0 && memcmp(&back[700], &src[100], 1200) == 0,
          "AtoD, DtoA, AtoA land at their offsets");
    EXPECT_CU(cuMemcpyHtoA(a, 3000, src, 1004), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyAtoH(back, a, 4000, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuArrayDestroy(a));
    CHECK_CU(cuArrayDestroy(b));
    CHECK_CU(cuMemFree(dp));
}

/* A 3D array bigger than a request (the shim splits it into several). */
static void test_big_3d(void)
{
    CUDA_ARRAY3D_DESCRIPTOR d = { .Width = 1024, .Height = 1024, .Depth = 6,
                                  .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4 };
    size_t row = 1024 * 4, slice = row * 1024, n = slice * 6;
    unsigned char *src = itest_malloc(n), *back = itest_malloc(n);
    CUDA_MEMCPY3D c;
    CUarray a = NULL;

    itest_fill(src, n, 3);
    CHECK_CU(cuArray3DCreate(&a, &d));
    memset(&c, 0, sizeof(c));
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = src;
    c.srcPitch = row;
    c.srcHeight = 1024;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.dstArray = a;
    c.WidthInBytes = row;
    c.Height = 1024;
    c.Depth = 6;
    CHECK_CU(cuMemcpy3D(&c));
    memset(&c, 0, sizeof(c));
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcArray = a;
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = back;
    c.dstPitch = row;
    c.dstHeight = 1024;
    c.WidthInBytes = row;
    c.Height = 1024;
    c.Depth = 6;
    memset(back, 0, n);
    CHECK_CU(cuMemcpy3D(&c));
    CHECK_BYTES(back, src, n, "24 MiB through a 3D array and back");
    /* a box from the middle: x 100..199 bytes, rows 10..29, slices 2..4 */
    c.srcXInBytes = 100;
    c.srcY = 10;
    c.srcZ = 2;
    c.dstXInBytes = 7;
    c.dstY = 1;
    c.dstZ = 0;
    c.WidthInBytes = 100;
    c.Height = 20;
    c.Depth = 3;
    memset(back, 0, n);
    CHECK_CU(cuMemcpy3D(&c));
    int ok = 1;
    for (size_t z = 0; z < 3; z++) {
        for (size_t y = 0; y < 20; y++) {
            ok &= memcmp(back + z * slice + (y + 1) * row + 7,
                         src + (z + 2) * slice + (y + 10) * row + 100, 100) == 0;
        }
    }
    CHECK(ok, "a box out of the array into a pitched host buffer");
    c.srcZ = 4;
    EXPECT_CU(cuMemcpy3D(&c), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuArrayDestroy(a));
    free(src);
    free(back);
}

static void test_handles(void)
{
    CUDA_ARRAY_DESCRIPTOR d = { .Width = 8, .Height = 8, .Format = CU_AD_FORMAT_FLOAT,
                                .NumChannels = 1 };
    CUDA_MEMCPY2D c;
    CUDA_RESOURCE_DESC rd;
    CUDA_TEXTURE_DESC td;
    CUtexObject t = 0;
    CUsurfObject s = 0;
    CUstream st = NULL;
    CUarray a = NULL, gone = NULL;
    float buf[64];

    if (itest_skip_bogus_handles()) {
        itest_skip("bogus array handles", "the real driver crashes on them");
        return;
    }
    CHECK_CU(cuArrayCreate(&a, &d));
    CHECK_CU(cuArrayCreate(&gone, &d));
    CHECK_CU(cuArrayDestroy(gone));
    CHECK_CU(cuStreamCreate(&st, 0));
    memset(&c, 0, sizeof(c));
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = buf;
    c.srcPitch = 32;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.WidthInBytes = 32;
    c.Height = 8;
    c.dstArray = gone;
    EXPECT_CU(cuMemcpy2D(&c), CUDA_ERROR_INVALID_HANDLE);
    c.dstArray = (CUarray)(uintptr_t)0x0900000000001234ull;
    EXPECT_CU(cuMemcpy2D(&c), CUDA_ERROR_INVALID_HANDLE);
    c.dstArray = (CUarray)st;
    EXPECT_CU(cuMemcpy2D(&c), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuArrayDestroy((CUarray)st), CUDA_ERROR_INVALID_HANDLE);
    c.dstArray = NULL;
    EXPECT_CU(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    c.dstArray = a;
    c.dstY = 1;
    EXPECT_CU(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
    c.dstY = 0;
    CHECK_CU(cuMemcpy2D(&c));

    memset(&rd, 0, sizeof(rd));
    memset(&td, 0, sizeof(td));
    rd.resType = CU_RESOURCE_TYPE_ARRAY;
    rd.res.array.hArray = gone;
    EXPECT_CU(cuTexObjectCreate(&t, &rd, &td, NULL), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuSurfObjectCreate(&s, &rd), CUDA_ERROR_INVALID_HANDLE);
    rd.res.array.hArray = a;
    CHECK_CU(cuTexObjectCreate(&t, &rd, &td, NULL));
    CHECK(t != 0, "a texture object");
    EXPECT_CU(cuSurfObjectCreate(&s, &rd), CUDA_ERROR_INVALID_VALUE);  /* no SURFACE_LDST */
    rd.resType = CU_RESOURCE_TYPE_MIPMAPPED_ARRAY;     /* an array where a mipmap goes */
    EXPECT_CU(cuTexObjectCreate(&t, &rd, &td, NULL), CUDA_ERROR_INVALID_HANDLE);
    {
        CUDA_RESOURCE_DESC q;
        CHECK_CU(cuTexObjectGetResourceDesc(&q, t));
        CHECK(q.resType == CU_RESOURCE_TYPE_ARRAY && q.res.array.hArray == a,
              "the texture's resource names the caller's array handle");
    }
    EXPECT_CU(cuTexObjectDestroy(t + 1), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuTexObjectDestroy(0x7fffffffull), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuSurfObjectDestroy(t), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuTexObjectDestroy(t));
    EXPECT_CU(cuTexObjectDestroy(t), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuArrayDestroy(a));
    CHECK_CU(cuStreamDestroy(st));
}

/* A mipmapped array owns its levels: they cannot be destroyed alone and
 * their handles go with it. */
static void test_mipmaps(void)
{
    CUDA_ARRAY3D_DESCRIPTOR d = { .Width = 64, .Height = 16, .Format = CU_AD_FORMAT_FLOAT,
                                  .NumChannels = 1 }, q;
    CUmipmappedArray m = NULL;
    CUarray l0 = NULL, l3 = NULL, again = NULL;
    float row[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, back[8];

    EXPECT_CU(cuMipmappedArrayCreate(&m, &d, 8), CUDA_ERROR_INVALID_VALUE);   /* 7 at most */
    EXPECT_CU(cuMipmappedArrayCreate(&m, &d, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMipmappedArrayCreate(&m, &d, 7));
    CHECK_CU(cuMipmappedArrayGetLevel(&l0, m, 0));
    CHECK_CU(cuMipmappedArrayGetLevel(&l3, m, 3));
    CHECK_CU(cuMipmappedArrayGetLevel(&again, m, 3));
    CHECK(again == l3, "a level has one handle");
    EXPECT_CU(cuMipmappedArrayGetLevel(&again, m, 7), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuArray3DGetDescriptor(&q, l3));
    CHECK(q.Width == 8 && q.Height == 2, "level 3 of 64x16 is 8x2");
    CHECK_CU(cuMemcpyHtoA(l3, 0, row, sizeof(row)));
    CHECK_CU(cuMemcpyAtoH(back, l3, 0, sizeof(back)));
    CHECK_BYTES(back, row, sizeof(row), "a level holds data like any array");
    EXPECT_CU(cuArrayDestroy(l0), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuMipmappedArrayDestroy((CUmipmappedArray)l0), CUDA_ERROR_INVALID_HANDLE);
    CHECK_CU(cuMipmappedArrayDestroy(m));
    EXPECT_CU(cuMipmappedArrayDestroy(m), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuMemcpyAtoH(back, l3, 0, 4), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuMipmappedArrayGetLevel(&again, m, 0), CUDA_ERROR_INVALID_HANDLE);
}

/* A created context's arrays and objects go with it. */
static void test_context_teardown(CUdevice dev, CUcontext primary)
{
    CUDA_ARRAY_DESCRIPTOR d = { .Width = 8, .Height = 8, .Format = CU_AD_FORMAT_FLOAT,
                                .NumChannels = 1 };
    CUDA_RESOURCE_DESC rd;
    CUDA_TEXTURE_DESC td;
    CUcontext ctx = NULL;
    CUtexObject t = 0;
    CUarray a = NULL;
    size_t free0, free1, total;

    CHECK_CU(cuCtxCreate(&ctx, NULL, 0, dev));
    CHECK_CU(cuMemGetInfo(&free0, &total));
    d.Width = 4096;
    d.Height = 1024;
    CHECK_CU(cuArrayCreate(&a, &d));
    CHECK_CU(cuMemGetInfo(&free1, &total));
    CHECK(free1 + 16 * MiB <= free0, "a 16 MiB array counts as device memory (%zu -> %zu)",
          free0, free1);
    memset(&rd, 0, sizeof(rd));
    memset(&td, 0, sizeof(td));
    rd.resType = CU_RESOURCE_TYPE_ARRAY;
    rd.res.array.hArray = a;
    CHECK_CU(cuTexObjectCreate(&t, &rd, &td, NULL));
    CHECK_CU(cuCtxDestroy(ctx));
    CHECK_CU(cuCtxSetCurrent(primary));
    EXPECT_CU(cuArrayDestroy(a), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuTexObjectDestroy(t), CUDA_ERROR_INVALID_HANDLE);
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;

    itest_setup(&dev, &ctx);
    test_descriptors();
    test_row_copies();
    test_big_3d();
    test_handles();
    test_mipmaps();
    test_context_teardown(dev, ctx);
    itest_teardown(dev);
    return itest_done();
}
