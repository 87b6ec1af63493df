/*
 * test_memcpy.c - every copy direction is byte-exact.
 *
 * Proves that HtoD, DtoH, DtoD, their *Async variants on a stream, the
 * unified cuMemcpy / cuMemcpyAsync (host<->device and device<->device, host
 * pointers passed as CUdeviceptr under unified addressing) and cuMemcpy2D
 * (host->pitched device, device->device, device->host with odd widths,
 * heights and x/y offsets) copy exactly the requested bytes:
 *   - sizes 1, 3, 4095, 4096, 4097, 65537, 1 MiB+13, 16 MiB+1, 64 MiB;
 *   - unaligned device offsets (base+1, base+3) and unaligned host buffers;
 *   - bytes around the destination range (guard bytes, row padding) are left
 *     untouched: every device buffer is compared in full against a host
 *     shadow copy that models what the device must contain.
 * Data is a deterministic xorshift pattern, so a failure is reproducible.
 */
#include "check.h"

#define GUARD 16 /* extra bytes allocated around every copy destination */

static CUstream g_stream;

/* A device buffer together with the host model of its contents. */
struct dbuf {
    CUdeviceptr d;
    unsigned char *shadow;
    size_t size;
};

static void dbuf_init(struct dbuf *b, size_t size, uint64_t seed)
{
    b->size = size;
    b->shadow = itest_malloc(size);
    REQUIRE_CU(cuMemAlloc(&b->d, size));
    itest_fill(b->shadow, size, seed);
    REQUIRE_CU(cuMemcpyHtoD(b->d, b->shadow, size));
}

static void dbuf_free(struct dbuf *b)
{
    CHECK_CU(cuMemFree(b->d));
    free(b->shadow);
    b->shadow = NULL;
}

/* Read the whole device buffer back and compare with the shadow. */
static int dbuf_verify(const struct dbuf *b, const char *what)
{
    unsigned char *tmp = itest_malloc(b->size);
    memset(tmp, 0, b->size);
    CUresult r = cuMemcpyDtoH(tmp, b->d, b->size);
    int ok;
    if (r != CUDA_SUCCESS)
        ok = itest_check_cu(r, "cuMemcpyDtoH(readback)", __FILE__, __LINE__);
    else
        ok = CHECK_BYTES(tmp, b->shadow, b->size, "%s: whole device buffer byte-exact", what);
    free(tmp);
    return ok;
}

/* Report a copy whose result is a device buffer. */
static void report_to_dev(CUresult r, const char *call, int line, const struct dbuf *b,
                          const char *what)
{
    if (r != CUDA_SUCCESS) {
        itest_check_cu(r, call, __FILE__, line);
        return;
    }
    dbuf_verify(b, what);
}

/* Report a copy whose result is host memory hd[0..total) vs expected. */
static void report_to_host(CUresult r, const char *call, int line, const unsigned char *hd,
                           const unsigned char *expect, size_t total, const char *what)
{
    if (r != CUDA_SUCCESS) {
        itest_check_cu(r, call, __FILE__, line);
        return;
    }
    CHECK_BYTES(hd, expect, total, "%s: host buffer byte-exact (incl. guard bytes)", what);
}

#define TO_DEV(call, b, what) report_to_dev((call), #call, __LINE__, (b), (what))
#define TO_HOST(call, hd, ex, n, what) report_to_host((call), #call, __LINE__, (hd), (ex), (n), (what))

static uint64_t g_seed = 1000;

/*
 * All linear copy flavours for one size and one (device offset, host offset)
 * combination. A and B are device buffers of n+GUARD bytes; hs/hd are host
 * buffers of n+GUARD bytes used at offset oh (so they are unaligned for oh
 * != 0).
 */
static void linear_round(size_t n, size_t od, size_t oh, struct dbuf *A, struct dbuf *B)
{
    const size_t T = n + GUARD;
    const size_t odB = 3 - od; /* a different alignment for the DtoD destination */
    unsigned char *hs = itest_malloc(T), *hd = itest_malloc(T), *ex = itest_malloc(T);
    CUdeviceptr a = A->d + od, b = B->d + odB;
    CUdeviceptr hs_u = (CUdeviceptr)(uintptr_t)(hs + oh);
    CUdeviceptr hd_u = (CUdeviceptr)(uintptr_t)(hd + oh);
    char what[160];

    itest_ctx("n=%zu dev+%zu host+%zu", n, od, oh);

#define NEW_SOURCE() itest_fill(hs, T, g_seed++)
#define EXPECT_HOST_FROM_A()                                                        \
    do {                                                                            \
        memset(hd, 0x5A, T);                                                        \
        memset(ex, 0x5A, T);                                                        \
        memcpy(ex + oh, A->shadow + od, n);                                         \
    } while (0)

    /* --- synchronous explicit-direction copies --- */
    NEW_SOURCE();
    memcpy(A->shadow + od, hs + oh, n);
    snprintf(what, sizeof what, "cuMemcpyHtoD");
    TO_DEV(cuMemcpyHtoD(a, hs + oh, n), A, what);

    EXPECT_HOST_FROM_A();
    TO_HOST(cuMemcpyDtoH(hd + oh, a, n), hd, ex, T, "cuMemcpyDtoH");

    memcpy(B->shadow + odB, A->shadow + od, n);
    snprintf(what, sizeof what, "cuMemcpyDtoD to dev+%zu", odB);
    TO_DEV(cuMemcpyDtoD(b, a, n), B, what);

    /* --- asynchronous explicit-direction copies on a stream --- */
    NEW_SOURCE();
    memcpy(A->shadow + od, hs + oh, n);
    EXPECT_HOST_FROM_A();
    {
        CUresult r = cuMemcpyHtoDAsync(a, hs + oh, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuMemcpyDtoHAsync(hd + oh, a, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(g_stream);
        report_to_host(r, "cuMemcpyHtoDAsync + cuMemcpyDtoHAsync + cuStreamSynchronize",
                       __LINE__, hd, ex, T, "cuMemcpyHtoDAsync + cuMemcpyDtoHAsync");
    }
    dbuf_verify(A, "after cuMemcpyHtoDAsync");

    memcpy(B->shadow + odB, A->shadow + od, n);
    {
        CUresult r = cuMemcpyDtoDAsync(b, a, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(g_stream);
        const char *what_ = "cuMemcpyDtoDAsync + cuStreamSynchronize";
        report_to_dev(r, what_, __LINE__, B, what_);
    }

    /* --- unified cuMemcpy: direction inferred from the pointers --- */
    NEW_SOURCE();
    memcpy(A->shadow + od, hs + oh, n);
    TO_DEV(cuMemcpy(a, hs_u, n), A, "cuMemcpy host->device");

    EXPECT_HOST_FROM_A();
    TO_HOST(cuMemcpy(hd_u, a, n), hd, ex, T, "cuMemcpy device->host");

    memcpy(B->shadow + odB, A->shadow + od, n);
    TO_DEV(cuMemcpy(b, a, n), B, "cuMemcpy device->device");

    /* --- unified cuMemcpyAsync on a stream --- */
    NEW_SOURCE();
    memcpy(A->shadow + od, hs + oh, n);
    {
        CUresult r = cuMemcpyAsync(a, hs_u, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(g_stream);
        const char *what_ = "cuMemcpyAsync host->device + cuStreamSynchronize";
        report_to_dev(r, what_, __LINE__, A, what_);
    }
    EXPECT_HOST_FROM_A();
    {
        CUresult r = cuMemcpyAsync(hd_u, a, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(g_stream);
        report_to_host(r, "cuMemcpyAsync device->host + cuStreamSynchronize", __LINE__, hd, ex,
                       T, "cuMemcpyAsync device->host");
    }
    memcpy(B->shadow + odB, A->shadow + od, n);
    {
        CUresult r = cuMemcpyAsync(b, a, n, g_stream);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(g_stream);
        const char *what_ = "cuMemcpyAsync device->device + cuStreamSynchronize";
        report_to_dev(r, what_, __LINE__, B, what_);
    }

#undef NEW_SOURCE
#undef EXPECT_HOST_FROM_A
    itest_ctx("%s", "");
    free(hs);
    free(hd);
    free(ex);
}

static void linear_tests(void)
{
    static const size_t sizes[] = {1, 3, 4095, 4096, 4097, 65537, MiB + 13};
    static const size_t offs[][2] = {{0, 0}, {1, 3}, {3, 1}}; /* {device, host} */

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        struct dbuf A, B;
        dbuf_init(&A, n + GUARD, g_seed++);
        dbuf_init(&B, n + GUARD, g_seed++);
        /* Every offset combination for small sizes, one unaligned one for the large one. */
        size_t first = n >= MiB ? 2 : 0;
        for (size_t k = first; k < 3; k++)
            linear_round(n, offs[k][0], offs[k][1], &A, &B);
        dbuf_free(&A);
        dbuf_free(&B);
    }
}

/* Big copies: one of each direction, not every flavour. */
static void big_tests(void)
{
    /* 16 MiB + 1 at unaligned offsets: HtoD, DtoH (readback), DtoD. */
    {
        const size_t n = 16 * MiB + 1, T = n + GUARD;
        struct dbuf A, B;
        dbuf_init(&A, T, g_seed++);
        dbuf_init(&B, T, g_seed++);
        unsigned char *hs = itest_malloc(T);
        itest_fill(hs, T, g_seed++);
        itest_ctx("n=%zu dev+1 host+3", n);
        memcpy(A.shadow + 1, hs + 3, n);
        TO_DEV(cuMemcpyHtoD(A.d + 1, hs + 3, n), &A, "cuMemcpyHtoD (verified by DtoH)");
        memcpy(B.shadow + 3, A.shadow + 1, n);
        TO_DEV(cuMemcpyDtoD(B.d + 3, A.d + 1, n), &B, "cuMemcpyDtoD to dev+3");
        itest_ctx("%s", "");
        free(hs);
        dbuf_free(&A);
        dbuf_free(&B);
    }
    /* 64 MiB aligned: HtoD then DtoH into a separate buffer. */
    {
        const size_t n = 64 * MiB;
        unsigned char *hs = itest_malloc(n), *hd = itest_malloc(n);
        CUdeviceptr d = 0;
        itest_fill(hs, n, g_seed++);
        memset(hd, 0, n);
        itest_ctx("n=%zu", n);
        if (CHECK_CU(cuMemAlloc(&d, n))) {
            CHECK_CU(cuMemcpyHtoD(d, hs, n));
            TO_HOST(cuMemcpyDtoH(hd, d, n), hd, hs, n, "cuMemcpyHtoD + cuMemcpyDtoH 64 MiB");
            CHECK_CU(cuMemFree(d));
        }
        itest_ctx("%s", "");
        free(hs);
        free(hd);
    }
}

/*
 * 2D copies. Model: host image H (pitch hp), pitched device buffers P1, P2
 * from cuMemAllocPitch, host result R (pitch rp). Each copy moves a W x Ht
 * region between odd x/y offsets; shadows model the expected contents, so
 * row padding and untouched rows are checked too.
 */
static void copy2d_model(unsigned char *dst, size_t dpitch, size_t dx, size_t dy,
                         const unsigned char *src, size_t spitch, size_t sx, size_t sy, size_t w,
                         size_t h)
{
    for (size_t y = 0; y < h; y++)
        memcpy(dst + (dy + y) * dpitch + dx, src + (sy + y) * spitch + sx, w);
}

static void pitched_tests(void)
{
    const size_t w1 = 257, h1 = 29; /* P1 logical size (bytes x rows) */
    const size_t w2 = 263, h2 = 31; /* P2 logical size */
    const size_t hp = 301, hh = 37; /* host image pitch x rows */
    const size_t rp = 283, rh = 33; /* host result pitch x rows */
    CUdeviceptr p1 = 0, p2 = 0;
    size_t pitch1 = 0, pitch2 = 0;

    itest_ctx("2D");
    REQUIRE_CU(cuMemAllocPitch(&p1, &pitch1, w1, h1, 4));
    REQUIRE_CU(cuMemAllocPitch(&p2, &pitch2, w2, h2, 4));
    CHECK(pitch1 >= w1, "cuMemAllocPitch pitch %zu >= width %zu", pitch1, w1);
    CHECK(pitch2 >= w2, "cuMemAllocPitch pitch %zu >= width %zu", pitch2, w2);

    struct dbuf P1 = {p1, itest_malloc(pitch1 * h1), pitch1 * h1};
    struct dbuf P2 = {p2, itest_malloc(pitch2 * h2), pitch2 * h2};
    itest_fill(P1.shadow, P1.size, g_seed++);
    itest_fill(P2.shadow, P2.size, g_seed++);
    REQUIRE_CU(cuMemcpyHtoD(P1.d, P1.shadow, P1.size));
    REQUIRE_CU(cuMemcpyHtoD(P2.d, P2.shadow, P2.size));

    /* Host image at an unaligned address (base+1). */
    unsigned char *hbase = itest_malloc(hp * hh + 1), *H = hbase + 1;
    itest_fill(H, hp * hh, g_seed++);

    /* 1. host -> P1: 203 x 23 from (5,3) to (7,2). */
    {
        CUDA_MEMCPY2D c;
        memset(&c, 0, sizeof c);
        c.srcMemoryType = CU_MEMORYTYPE_HOST;
        c.srcHost = H;
        c.srcPitch = hp;
        c.srcXInBytes = 5;
        c.srcY = 3;
        c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        c.dstDevice = P1.d;
        c.dstPitch = pitch1;
        c.dstXInBytes = 7;
        c.dstY = 2;
        c.WidthInBytes = 203;
        c.Height = 23;
        copy2d_model(P1.shadow, pitch1, 7, 2, H, hp, 5, 3, 203, 23);
        TO_DEV(cuMemcpy2D(&c), &P1, "cuMemcpy2D host->device 203x23 (5,3)->(7,2)");
    }
    /* 2. P1 -> P2: 201 x 21 from (3,1) to (11,4). */
    {
        CUDA_MEMCPY2D c;
        memset(&c, 0, sizeof c);
        c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        c.srcDevice = P1.d;
        c.srcPitch = pitch1;
        c.srcXInBytes = 3;
        c.srcY = 1;
        c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        c.dstDevice = P2.d;
        c.dstPitch = pitch2;
        c.dstXInBytes = 11;
        c.dstY = 4;
        c.WidthInBytes = 201;
        c.Height = 21;
        copy2d_model(P2.shadow, pitch2, 11, 4, P1.shadow, pitch1, 3, 1, 201, 21);
        TO_DEV(cuMemcpy2D(&c), &P2, "cuMemcpy2D device->device 201x21 (3,1)->(11,4)");
    }
    /* 3. P2 -> host result (unaligned base+3): 199 x 19 from (13,5) to (1,1). */
    {
        unsigned char *rbase = itest_malloc(rp * rh + 3), *R = rbase + 3;
        unsigned char *ex = itest_malloc(rp * rh);
        memset(R, 0xC3, rp * rh);
        memset(ex, 0xC3, rp * rh);
        CUDA_MEMCPY2D c;
        memset(&c, 0, sizeof c);
        c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        c.srcDevice = P2.d;
        c.srcPitch = pitch2;
        c.srcXInBytes = 13;
        c.srcY = 5;
        c.dstMemoryType = CU_MEMORYTYPE_HOST;
        c.dstHost = R;
        c.dstPitch = rp;
        c.dstXInBytes = 1;
        c.dstY = 1;
        c.WidthInBytes = 199;
        c.Height = 19;
        copy2d_model(ex, rp, 1, 1, P2.shadow, pitch2, 13, 5, 199, 19);
        TO_HOST(cuMemcpy2D(&c), R, ex, rp * rh, "cuMemcpy2D device->host 199x19 (13,5)->(1,1)");
        free(rbase);
        free(ex);
    }
    /* 4. Single odd row, height 1, width 1 (degenerate shapes). */
    {
        CUDA_MEMCPY2D c;
        memset(&c, 0, sizeof c);
        c.srcMemoryType = CU_MEMORYTYPE_HOST;
        c.srcHost = H;
        c.srcPitch = hp;
        c.srcXInBytes = 299;
        c.srcY = 36;
        c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        c.dstDevice = P1.d;
        c.dstPitch = pitch1;
        c.dstXInBytes = 256;
        c.dstY = 28;
        c.WidthInBytes = 1;
        c.Height = 1;
        copy2d_model(P1.shadow, pitch1, 256, 28, H, hp, 299, 36, 1, 1);
        TO_DEV(cuMemcpy2D(&c), &P1, "cuMemcpy2D host->device 1x1 to last byte of last row");
    }

    itest_ctx("%s", "");
    free(hbase);
    free(P1.shadow);
    free(P2.shadow);
    CHECK_CU(cuMemFree(p1));
    CHECK_CU(cuMemFree(p2));
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);
    REQUIRE_CU(cuStreamCreate(&g_stream, CU_STREAM_NON_BLOCKING));

    linear_tests();
    big_tests();
    pitched_tests();

    CHECK_CU(cuStreamDestroy(g_stream));
    itest_teardown(dev);
    return itest_done();
}
