/*
 * test_errors.c - invalid arguments are rejected with the documented codes,
 * without side effects, and without poisoning the context.
 *
 * Proves that:
 *   - cuMemFree of a bogus pointer, of an interior pointer and a double free
 *     return CUDA_ERROR_INVALID_VALUE;
 *   - synchronous copies to/from a bogus device pointer, a freed allocation,
 *     or running past the end of an allocation return
 *     CUDA_ERROR_INVALID_VALUE and do not write anything;
 *   - pointer queries on a bogus pointer fail (NOT_FOUND / INVALID_VALUE);
 *   - cuMemAlloc(1 << 50) returns CUDA_ERROR_OUT_OF_MEMORY and the context
 *     keeps working; cuMemAlloc(0) and NULL output pointers return
 *     CUDA_ERROR_INVALID_VALUE;
 *   - bogus or destroyed stream / event / module handles return
 *     CUDA_ERROR_INVALID_HANDLE (skipped with VGC_ITEST_REAL_DRIVER=1: NVIDIA's
 *     driver may dereference such handles; the shim must validate them);
 *   - after all of that a normal alloc + copy round trip still succeeds and
 *     cuCtxSynchronize reports no sticky error.
 */
#include "check.h"

/* Page 1 of the address space: never a device allocation, never mapped. */
#define BOGUS_DPTR ((CUdeviceptr)0x1000)
#define BOGUS_STREAM ((CUstream)(uintptr_t)0x1234567)
#define BOGUS_EVENT ((CUevent)(uintptr_t)0x7654321)
#define BOGUS_MODULE ((CUmodule)(uintptr_t)0x2345678)

#define ALLOC (4 * MiB)

/* Read the last `n` bytes of allocation d (size ALLOC) and compare with expect. */
static void check_tail_unchanged(CUdeviceptr d, const unsigned char *expect, size_t n,
                                 const char *what)
{
    unsigned char got[64];
    if (QUIET_CU(cuMemcpyDtoH(got, d + ALLOC - n, n)))
        CHECK_BYTES(got, expect, n, "%s: allocation tail unchanged", what);
}

static void free_tests(void)
{
    EXPECT_CU(cuMemFree(BOGUS_DPTR), CUDA_ERROR_INVALID_VALUE);

    CUdeviceptr d = 0;
    REQUIRE_CU(cuMemAlloc(&d, ALLOC));
    EXPECT_CU(cuMemFree(d + 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemFree(d));
    EXPECT_CU(cuMemFree(d), CUDA_ERROR_INVALID_VALUE); /* double free */

    /* The freed range is gone: copies into / out of it are rejected. */
    unsigned char h[64] = {0};
    EXPECT_CU(cuMemcpyHtoD(d, h, sizeof h), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyDtoH(h, d + 100, sizeof h), CUDA_ERROR_INVALID_VALUE);
}

static void copy_bounds_tests(void)
{
    CUdeviceptr d = 0, d2 = 0;
    REQUIRE_CU(cuMemAlloc(&d, ALLOC));
    REQUIRE_CU(cuMemAlloc(&d2, ALLOC));

    /* Known tail contents so we can prove failed copies wrote nothing. */
    unsigned char tail[64], src[64], dst[64];
    itest_fill(tail, sizeof tail, 1);
    itest_fill(src, sizeof src, 2);
    REQUIRE_CU(cuMemcpyHtoD(d + ALLOC - sizeof tail, tail, sizeof tail));

    /* bogus device pointer */
    EXPECT_CU(cuMemcpyHtoD(BOGUS_DPTR, src, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyDtoH(dst, BOGUS_DPTR, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyDtoD(d, BOGUS_DPTR, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyDtoD(BOGUS_DPTR, d, 16), CUDA_ERROR_INVALID_VALUE);

    /* starts inside the allocation, ends 8 bytes past it */
    EXPECT_CU(cuMemcpyHtoD(d + ALLOC - 8, src, 16), CUDA_ERROR_INVALID_VALUE);
    check_tail_unchanged(d, tail, sizeof tail, "rejected HtoD past the end");
    memset(dst, 0xA5, sizeof dst);
    EXPECT_CU(cuMemcpyDtoH(dst, d + ALLOC - 8, 16), CUDA_ERROR_INVALID_VALUE);
    {
        unsigned char untouched[sizeof dst];
        memset(untouched, 0xA5, sizeof untouched);
        CHECK_BYTES(dst, untouched, sizeof dst, "rejected DtoH past the end: host buffer untouched");
    }
    EXPECT_CU(cuMemcpyDtoD(d2, d + ALLOC - 8, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemcpyDtoD(d + ALLOC - 8, d2, 16), CUDA_ERROR_INVALID_VALUE);
    check_tail_unchanged(d, tail, sizeof tail, "rejected DtoD past the end");
    /* the whole allocation plus one byte */
    unsigned char *big = itest_malloc(ALLOC + 1);
    memset(big, 0x3C, ALLOC + 1);
    EXPECT_CU(cuMemcpyHtoD(d, big, ALLOC + 1), CUDA_ERROR_INVALID_VALUE);
    check_tail_unchanged(d, tail, sizeof tail, "rejected HtoD of size+1");
    free(big);

    /* pointer queries on a bogus pointer */
    CUdeviceptr base = 0;
    size_t size = 0;
    EXPECT_CU(cuMemGetAddressRange(&base, &size, BOGUS_DPTR), CUDA_ERROR_NOT_FOUND);
    unsigned int mt = 0;
    EXPECT_CU(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, BOGUS_DPTR),
              CUDA_ERROR_INVALID_VALUE);

    /* exactly the allocation still works */
    unsigned char *a = itest_malloc(ALLOC), *b = itest_malloc(ALLOC);
    itest_fill(a, ALLOC, 3);
    memset(b, 0, ALLOC);
    CHECK_CU(cuMemcpyHtoD(d, a, ALLOC));
    CHECK_CU(cuMemcpyDtoH(b, d, ALLOC));
    CHECK_BYTES(b, a, ALLOC, "copy of exactly the allocation size after rejected copies");
    free(a);
    free(b);

    CHECK_CU(cuMemFree(d));
    CHECK_CU(cuMemFree(d2));
}

static void alloc_tests(void)
{
    CUdeviceptr d = 0;
    EXPECT_CU(cuMemAlloc(&d, (size_t)1 << 50), CUDA_ERROR_OUT_OF_MEMORY);
    d = 0;
    if (CHECK_CU(cuMemAlloc(&d, 4096)))
        CHECK_CU(cuMemFree(d));
    CHECK_CU(cuCtxSynchronize());

    EXPECT_CU(cuMemAlloc(&d, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemAlloc(NULL, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
}

static void handle_tests(void)
{
    if (itest_skip_bogus_handles()) {
        itest_skip("bogus / destroyed stream, event and module handles",
                   "VGC_ITEST_REAL_DRIVER set");
        return;
    }
    unsigned char h[16] = {0};
    CUdeviceptr d = 0;
    REQUIRE_CU(cuMemAlloc(&d, 4096));

    EXPECT_CU(cuStreamSynchronize(BOGUS_STREAM), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuStreamQuery(BOGUS_STREAM), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuMemcpyHtoDAsync(d, h, sizeof h, BOGUS_STREAM), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuStreamDestroy(BOGUS_STREAM), CUDA_ERROR_INVALID_HANDLE);

    EXPECT_CU(cuEventQuery(BOGUS_EVENT), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuEventSynchronize(BOGUS_EVENT), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuEventRecord(BOGUS_EVENT, 0), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_CU(cuEventDestroy(BOGUS_EVENT), CUDA_ERROR_INVALID_HANDLE);

    CUstream s = NULL;
    if (CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING))) {
        CHECK_CU(cuStreamDestroy(s));
        EXPECT_CU(cuStreamSynchronize(s), CUDA_ERROR_INVALID_HANDLE);
        EXPECT_CU(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
        /* Async work reports its errors at the launch or, as with any
         * queued work, at the next synchronising call. */
        CUresult r = cuMemsetD8Async(d, 0, 16, s);
        if (r == CUDA_SUCCESS)
            r = cuCtxSynchronize();
        CHECK(r == CUDA_ERROR_INVALID_HANDLE,
              "cuMemsetD8Async on a destroyed stream fails with CUDA_ERROR_INVALID_HANDLE "
              "at once or at the next synchronising call (got %s)", itest_errname(r));
        EXPECT_CU(cuStreamDestroy(s), CUDA_ERROR_INVALID_HANDLE);
    }
    CUevent e = NULL;
    if (CHECK_CU(cuEventCreate(&e, CU_EVENT_DEFAULT))) {
        CHECK_CU(cuEventDestroy(e));
        EXPECT_CU(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
        EXPECT_CU(cuEventSynchronize(e), CUDA_ERROR_INVALID_HANDLE);
    }

    CUfunction f = NULL;
    EXPECT_CU(cuModuleGetFunction(&f, BOGUS_MODULE, "kernel"), CUDA_ERROR_INVALID_HANDLE);

    CHECK_CU(cuMemFree(d));
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);

    free_tests();
    copy_bounds_tests();
    alloc_tests();
    handle_tests();

    /* The context is still healthy: no sticky error, copies work. */
    CHECK_CU(cuCtxSynchronize());
    CUdeviceptr d = 0;
    if (CHECK_CU(cuMemAlloc(&d, 65536))) {
        unsigned char *a = itest_malloc(65536), *b = itest_malloc(65536);
        itest_fill(a, 65536, 99);
        memset(b, 0, 65536);
        CHECK_CU(cuMemcpyHtoD(d, a, 65536));
        CHECK_CU(cuMemcpyDtoH(b, d, 65536));
        CHECK_BYTES(b, a, 65536, "final alloc + copy round trip after all errors");
        CHECK_CU(cuMemFree(d));
        free(a);
        free(b);
    }
    CHECK_CU(cuCtxSynchronize());

    itest_teardown(dev);
    return itest_done();
}
