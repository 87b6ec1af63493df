/*
 * test_memset.c - cuMemsetD8/D16/D32 (sync and async) and cuMemsetD2D*.
 *
 * Proves that every memset flavour writes exactly the requested elements
 * with the requested value and nothing else:
 *   - cuMemsetD8/D16/D32 synchronous, on a created stream (*Async + stream
 *     sync) and on the legacy default stream (*Async on stream 0);
 *   - partial ranges at unaligned offsets for D8 (base+1, base+3, 1 byte at
 *     an odd offset), element-aligned partial ranges for D16/D32;
 *   - D16/D32 values land in memory in the device's (little-endian) element
 *     order, i.e. as the host sees a uint16_t/uint32_t array;
 *   - cuMemsetD2D8/D2D16/D2D32 on cuMemAllocPitch memory only touch Width
 *     elements of Height rows, leaving row padding and other rows alone.
 * Each device buffer is read back in full and compared with a host model.
 */
#include "check.h"

static uint64_t g_seed = 77;

struct dbuf {
    CUdeviceptr d;
    unsigned char *shadow;
    size_t size;
};

static void dbuf_init(struct dbuf *b, CUdeviceptr d, size_t size)
{
    b->d = d;
    b->size = size;
    b->shadow = itest_malloc(size);
    itest_fill(b->shadow, size, g_seed++);
    REQUIRE_CU(cuMemcpyHtoD(b->d, b->shadow, size));
}

/* Report `r` (the memset result) and, if it succeeded, compare the whole buffer. */
static int verify(CUresult r, const struct dbuf *b, const char *what)
{
    if (r != CUDA_SUCCESS)
        return itest_check_cu(r, what, __FILE__, __LINE__);
    unsigned char *tmp = itest_malloc(b->size);
    memset(tmp, 0, b->size);
    CUresult rr = cuMemcpyDtoH(tmp, b->d, b->size);
    int ok = rr == CUDA_SUCCESS
                 ? CHECK_BYTES(tmp, b->shadow, b->size, "%s: whole buffer byte-exact", what)
                 : itest_check_cu(rr, "cuMemcpyDtoH(readback)", __FILE__, __LINE__);
    free(tmp);
    return ok;
}

static void model8(struct dbuf *b, size_t off, unsigned char v, size_t n)
{
    memset(b->shadow + off, v, n);
}
static void model16(struct dbuf *b, size_t off, uint16_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(b->shadow + off + 2 * i, &v, 2);
}
static void model32(struct dbuf *b, size_t off, uint32_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(b->shadow + off + 4 * i, &v, 4);
}

/* Run an async memset result through a stream synchronize. */
static CUresult then_sync(CUresult r, CUstream s)
{
    return r == CUDA_SUCCESS ? cuStreamSynchronize(s) : r;
}

static void linear_tests(CUstream s)
{
    const size_t N = 65536 + 7;
    CUdeviceptr d = 0;
    REQUIRE_CU(cuMemAlloc(&d, N));
    struct dbuf b;
    dbuf_init(&b, d, N);

    /* --- D8 --- */
    model8(&b, 0, 0xAB, N);
    verify(cuMemsetD8(d, 0xAB, N), &b, "cuMemsetD8 whole buffer");
    model8(&b, 1, 0x11, 5);
    verify(cuMemsetD8(d + 1, 0x11, 5), &b, "cuMemsetD8 base+1, 5 bytes");
    model8(&b, 3, 0x22, 4093);
    verify(cuMemsetD8(d + 3, 0x22, 4093), &b, "cuMemsetD8 base+3, 4093 bytes");
    model8(&b, 4097, 0x33, 1);
    verify(cuMemsetD8(d + 4097, 0x33, 1), &b, "cuMemsetD8 base+4097, 1 byte");
    model8(&b, N - 1, 0x44, 1);
    verify(cuMemsetD8(d + N - 1, 0x44, 1), &b, "cuMemsetD8 last byte");

    /* --- D16 (2-byte aligned destinations) --- */
    model16(&b, 0, 0xBEEF, N / 2);
    verify(cuMemsetD16(d, 0xBEEF, N / 2), &b, "cuMemsetD16 whole buffer");
    model16(&b, 2, 0x1234, 3);
    verify(cuMemsetD16(d + 2, 0x1234, 3), &b, "cuMemsetD16 base+2, 3 elements");
    model16(&b, 1000, 0xA5C3, 1001);
    verify(cuMemsetD16(d + 1000, 0xA5C3, 1001), &b, "cuMemsetD16 base+1000, 1001 elements");

    /* --- D32 (4-byte aligned destinations) --- */
    model32(&b, 0, 0xDEADBEEFu, N / 4);
    verify(cuMemsetD32(d, 0xDEADBEEFu, N / 4), &b, "cuMemsetD32 whole buffer");
    model32(&b, 4, 0x01020304u, 1);
    verify(cuMemsetD32(d + 4, 0x01020304u, 1), &b, "cuMemsetD32 base+4, 1 element");
    model32(&b, 12, 0xCAFEF00Du, 4093);
    verify(cuMemsetD32(d + 12, 0xCAFEF00Du, 4093), &b, "cuMemsetD32 base+12, 4093 elements");

    /* --- async on a created stream --- */
    model8(&b, 7, 0x5A, 10001);
    verify(then_sync(cuMemsetD8Async(d + 7, 0x5A, 10001, s), s), &b,
           "cuMemsetD8Async base+7 on stream + cuStreamSynchronize");
    model16(&b, 6, 0x7E7Fu, 2049);
    verify(then_sync(cuMemsetD16Async(d + 6, 0x7E7F, 2049, s), s), &b,
           "cuMemsetD16Async base+6 on stream + cuStreamSynchronize");
    model32(&b, 8, 0x89ABCDEFu, 3000);
    verify(then_sync(cuMemsetD32Async(d + 8, 0x89ABCDEFu, 3000, s), s), &b,
           "cuMemsetD32Async base+8 on stream + cuStreamSynchronize");

    /* A chain on one stream: later memsets win where they overlap. */
    model8(&b, 0, 0x01, N);
    model32(&b, 16, 0x02020202u, 100);
    model8(&b, 17, 0x03, 3);
    {
        CUresult r = cuMemsetD8Async(d, 0x01, N, s);
        if (r == CUDA_SUCCESS)
            r = cuMemsetD32Async(d + 16, 0x02020202u, 100, s);
        if (r == CUDA_SUCCESS)
            r = cuMemsetD8Async(d + 17, 0x03, 3, s);
        verify(then_sync(r, s), &b, "three overlapping async memsets apply in stream order");
    }

    /* --- async on the legacy default stream (stream 0) --- */
    model8(&b, 1, 0xE1, 333);
    verify(then_sync(cuMemsetD8Async(d + 1, 0xE1, 333, 0), 0), &b,
           "cuMemsetD8Async base+1 on stream 0 + cuStreamSynchronize(0)");
    model16(&b, 400, 0xE2E3u, 77);
    verify(then_sync(cuMemsetD16Async(d + 400, 0xE2E3, 77, 0), 0), &b,
           "cuMemsetD16Async on stream 0 + cuStreamSynchronize(0)");
    model32(&b, 1024, 0xE4E5E6E7u, 555);
    {
        CUresult r = cuMemsetD32Async(d + 1024, 0xE4E5E6E7u, 555, 0);
        if (r == CUDA_SUCCESS)
            r = cuCtxSynchronize();
        verify(r, &b, "cuMemsetD32Async on stream 0 + cuCtxSynchronize");
    }

    CHECK_CU(cuMemFree(d));
    free(b.shadow);

    /* --- a large D32: 8 MiB --- */
    const size_t big = 8 * MiB;
    if (CHECK_CU(cuMemAlloc(&d, big))) {
        dbuf_init(&b, d, big);
        model32(&b, 0, 0x0BADF00Du, big / 4);
        verify(cuMemsetD32(d, 0x0BADF00Du, big / 4), &b, "cuMemsetD32 8 MiB");
        CHECK_CU(cuMemFree(d));
        free(b.shadow);
    }
}

static void pitched_tests(CUstream s)
{
    const size_t w = 203, h = 17;
    CUdeviceptr p = 0;
    size_t pitch = 0;
    REQUIRE_CU(cuMemAllocPitch(&p, &pitch, w, h, 4));
    CHECK(pitch >= w && pitch % 4 == 0, "cuMemAllocPitch pitch %zu >= %zu and 4-aligned", pitch, w);
    struct dbuf b;
    dbuf_init(&b, p, pitch * h);

    /* D2D8: 150 bytes x 10 rows starting at (x=3, y=2). */
    for (size_t y = 0; y < 10; y++)
        model8(&b, (2 + y) * pitch + 3, 0x7E, 150);
    verify(cuMemsetD2D8(p + 2 * pitch + 3, pitch, 0x7E, 150, 10), &b,
           "cuMemsetD2D8 150x10 at (3,2)");

    /* D2D16: 33 elements x 5 rows at (x=10 bytes, y=11). */
    for (size_t y = 0; y < 5; y++)
        model16(&b, (11 + y) * pitch + 10, 0x4321, 33);
    verify(cuMemsetD2D16(p + 11 * pitch + 10, pitch, 0x4321, 33, 5), &b,
           "cuMemsetD2D16 33x5 at (10,11)");

    /* D2D32: 40 elements x 12 rows at (x=8 bytes, y=1). */
    for (size_t y = 0; y < 12; y++)
        model32(&b, (1 + y) * pitch + 8, 0x01020304u, 40);
    verify(cuMemsetD2D32(p + 1 * pitch + 8, pitch, 0x01020304u, 40, 12), &b,
           "cuMemsetD2D32 40x12 at (8,1)");

    /* Async D2D8 on a stream: full logical width, all rows, padding untouched. */
    for (size_t y = 0; y < h; y++)
        model8(&b, y * pitch, 0x3C, w);
    verify(then_sync(cuMemsetD2D8Async(p, pitch, 0x3C, w, h, s), s), &b,
           "cuMemsetD2D8Async full width x all rows on stream");

    /* Async D2D32 on the default stream. */
    for (size_t y = 0; y < 3; y++)
        model32(&b, (14 + y) * pitch + 4, 0xFFEEDDCCu, 49);
    verify(then_sync(cuMemsetD2D32Async(p + 14 * pitch + 4, pitch, 0xFFEEDDCCu, 49, 3, 0), 0),
           &b, "cuMemsetD2D32Async 49x3 at (4,14) on stream 0");

    CHECK_CU(cuMemFree(p));
    free(b.shadow);
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);
    CUstream s = NULL;
    REQUIRE_CU(cuStreamCreate(&s, CU_STREAM_DEFAULT));

    linear_tests(s);
    pitched_tests(s);

    CHECK_CU(cuStreamDestroy(s));
    itest_teardown(dev);
    return itest_done();
}
