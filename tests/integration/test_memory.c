/*
 * test_memory.c - memory accounting, pointer queries and pinned host memory.
 *
 * Proves that:
 *   - cuMemGetInfo reports free <= total, free drops by at least 64 MiB while
 *     a 64 MiB allocation is live and recovers after cuMemFree;
 *   - cuMemGetAddressRange maps an interior pointer to its allocation's base
 *     and size;
 *   - cuPointerGetAttribute reports MEMORY_TYPE / DEVICE_ORDINAL / CONTEXT for
 *     device pointers and MEMORY_TYPE == HOST for pinned/registered host memory;
 *   - pinned memory from cuMemAllocHost / cuMemHostAlloc (flags 0 and
 *     PORTABLE) and memory registered with cuMemHostRegister work as copy
 *     sources and destinations, sync and async, byte-exact, and are released
 *     by cuMemFreeHost / cuMemHostUnregister;
 *   - device addresses never alias host memory: the range of a device
 *     allocation does not overlap host heap, mmap'd, pinned or stack memory
 *     (unified addressing needs disjoint ranges for cuMemcpy to work).
 */
#include "check.h"

static int ranges_overlap(uintptr_t a, size_t an, uintptr_t b, size_t bn)
{
    return a < b + bn && b < a + an;
}

/*
 * Free memory is the device's, shared with every other tenant (another VM,
 * another process): one whose allocations come and go between our two
 * readings moves the figure too.  So a measurement is repeated until one
 * round sees our allocation alone; a real accounting bug fails them all.
 */
static void mem_info_tests(void)
{
    const size_t n = 64 * MiB;
    size_t free0 = 0, total0 = 0, free1 = 0, total1 = 0, free2 = 0, total2 = 0;
    int drop = 0, recover = 0, same_total = 1, rounds;

    for (rounds = 1; rounds <= 10 && !(drop && recover); rounds++) {
        CUdeviceptr d = 0;

        if (!CHECK_CU(cuMemGetInfo(&free0, &total0)) || !CHECK_CU(cuMemAlloc(&d, n)))
            return;
        CHECK_CU(cuMemGetInfo(&free1, &total1));
        CHECK_CU(cuMemFree(d));
        CHECK_CU(cuMemGetInfo(&free2, &total2));
        same_total &= total1 == total0 && total2 == total0;
        drop = free1 + n <= free0;
        /* A little slack for allocator metadata. */
        recover = free2 >= free1 + n - 8 * MiB;
    }
    CHECK(total0 > 0 && free0 <= total0, "cuMemGetInfo free %zu <= total %zu", free0, total0);
    CHECK(same_total, "cuMemGetInfo total is constant");
    CHECK(drop, "free memory drops by >= 64 MiB while allocated (%zu -> %zu, %d round(s))",
          free0, free1, rounds - 1);
    CHECK(recover, "free memory recovers after cuMemFree (%zu -> %zu)", free1, free2);
}

static void address_range_tests(CUcontext ctx)
{
    const size_t n = 4 * MiB; /* a multiple of any allocation granularity */
    CUdeviceptr d = 0, base = 0;
    size_t size = 0;
    if (!CHECK_CU(cuMemAlloc(&d, n)))
        return;

    CHECK_CU(cuMemGetAddressRange(&base, &size, d + 12345));
    CHECK_EQ(base, d, "cuMemGetAddressRange(interior) base");
    CHECK_EQ(size, n, "cuMemGetAddressRange(interior) size");
    base = 0;
    size = 0;
    CHECK_CU(cuMemGetAddressRange(&base, &size, d + n - 1));
    CHECK(base == d && size == n, "cuMemGetAddressRange(last byte) -> base/size of allocation");
    size = 0;
    CHECK_CU(cuMemGetAddressRange(NULL, &size, d));
    CHECK_EQ(size, n, "cuMemGetAddressRange with pbase NULL still returns size");

    /* An odd-sized allocation: size covers at least what was requested. */
    CUdeviceptr o = 0;
    if (CHECK_CU(cuMemAlloc(&o, 1000))) {
        base = 0;
        size = 0;
        CHECK_CU(cuMemGetAddressRange(&base, &size, o + 999));
        CHECK(base == o && size >= 1000,
              "cuMemGetAddressRange(odd alloc + 999): base ok, size %zu >= 1000", size);
        CHECK_CU(cuMemFree(o));
    }

    unsigned int mt = 0;
    CHECK_CU(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d));
    CHECK_EQ(mt, CU_MEMORYTYPE_DEVICE, "MEMORY_TYPE of a device pointer");
    mt = 0;
    CHECK_CU(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 777));
    CHECK_EQ(mt, CU_MEMORYTYPE_DEVICE, "MEMORY_TYPE of an interior device pointer");
    int ord = -1;
    CHECK_CU(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d));
    CHECK_EQ(ord, 0, "DEVICE_ORDINAL of a device-0 pointer");
    CUcontext pc = NULL;
    CHECK_CU(cuPointerGetAttribute(&pc, CU_POINTER_ATTRIBUTE_CONTEXT, d));
    CHECK(pc == ctx, "CONTEXT of a device pointer is the allocating (primary) context");

    CHECK_CU(cuMemFree(d));
}

/* HtoD from src then DtoH into dst (both host buffers of n bytes), sync or async. */
static void round_trip(const char *what, void *src, void *dst, size_t n, CUstream s, int async)
{
    CUdeviceptr d = 0;
    if (!QUIET_CU(cuMemAlloc(&d, n)))
        return;
    itest_fill(src, n, n + (size_t)async);
    memset(dst, 0, n);
    CUresult r;
    if (async) {
        r = cuMemcpyHtoDAsync(d, src, n, s);
        if (r == CUDA_SUCCESS)
            r = cuMemcpyDtoHAsync(dst, d, n, s);
        if (r == CUDA_SUCCESS)
            r = cuStreamSynchronize(s);
    } else {
        r = cuMemcpyHtoD(d, src, n);
        if (r == CUDA_SUCCESS)
            r = cuMemcpyDtoH(dst, d, n);
    }
    if (r != CUDA_SUCCESS)
        itest_check_cu(r, what, __FILE__, __LINE__);
    else
        CHECK_BYTES(dst, src, n, "%s: %s round trip of %zu bytes byte-exact", what,
                    async ? "async" : "sync", n);
    QUIET_CU(cuMemFree(d));
}

static void check_host_ptr_type(void *p, const char *what)
{
    unsigned int mt = 0;
    if (CHECK_CU(cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                       (CUdeviceptr)(uintptr_t)p)))
        CHECK_EQ(mt, CU_MEMORYTYPE_HOST, "MEMORY_TYPE of %s", what);
}

static void pinned_tests(CUstream s)
{
    const size_t n = MiB + 5;
    void *a = NULL, *b = NULL, *c = NULL;

    if (!CHECK_CU(cuMemAllocHost(&a, n)))
        return;
    if (!CHECK_CU(cuMemHostAlloc(&b, n, 0)))
        return;
    if (!CHECK_CU(cuMemHostAlloc(&c, n, CU_MEMHOSTALLOC_PORTABLE)))
        return;
    CHECK(a && b && c && a != b && b != c && a != c, "pinned allocations are distinct");

    /* The buffers are host memory the program can touch directly. */
    memset(a, 1, n);
    memset(b, 2, n);
    memset(c, 3, n);

    unsigned int f = 0xffffffffu;
    CHECK_CU(cuMemHostGetFlags(&f, a));
    CHECK((f & CU_MEMHOSTALLOC_WRITECOMBINED) == 0,
          "cuMemHostGetFlags(cuMemAllocHost) = 0x%x has no WRITECOMBINED", f);
    f = 0xffffffffu;
    CHECK_CU(cuMemHostGetFlags(&f, b));
    CHECK((f & CU_MEMHOSTALLOC_WRITECOMBINED) == 0,
          "cuMemHostGetFlags(cuMemHostAlloc flags 0) = 0x%x has no WRITECOMBINED", f);
    f = 0;
    CHECK_CU(cuMemHostGetFlags(&f, c));
    CHECK((f & CU_MEMHOSTALLOC_PORTABLE) != 0,
          "cuMemHostGetFlags(cuMemHostAlloc PORTABLE) = 0x%x includes PORTABLE", f);

    check_host_ptr_type(a, "cuMemAllocHost pointer");
    check_host_ptr_type((char *)b + 100, "interior cuMemHostAlloc pointer");
    check_host_ptr_type(c, "cuMemHostAlloc(PORTABLE) pointer");

    round_trip("cuMemAllocHost -> cuMemHostAlloc(0)", a, b, n, s, 0);
    round_trip("cuMemAllocHost -> cuMemHostAlloc(0)", a, b, n, s, 1);
    round_trip("cuMemHostAlloc(PORTABLE) -> cuMemAllocHost", c, a, n, s, 0);
    round_trip("cuMemHostAlloc(PORTABLE) -> cuMemAllocHost", c, a, n, s, 1);
    /* Unaligned offsets inside pinned buffers. */
    round_trip("pinned+1 -> pinned+3", (char *)a + 1, (char *)b + 3, n - 3, s, 1);

    CHECK_CU(cuMemFreeHost(a));
    CHECK_CU(cuMemFreeHost(b));
    CHECK_CU(cuMemFreeHost(c));
}

static void registered_tests(CUstream s)
{
    long page = sysconf(_SC_PAGESIZE);
    const size_t n = MiB;
    void *r1 = NULL, *r2 = NULL;
    if (page <= 0)
        page = 4096;
    if (posix_memalign(&r1, (size_t)page, n) != 0 || posix_memalign(&r2, (size_t)page, n) != 0)
        itest_bail("posix_memalign failed");
    memset(r1, 0, n);
    memset(r2, 0, n);

    int reg1 = CHECK_CU(cuMemHostRegister(r1, n, 0));
    int reg2 = CHECK_CU(cuMemHostRegister(r2, n, 0));
    if (reg1)
        check_host_ptr_type(r1, "cuMemHostRegister'ed pointer");
    if (reg1 && reg2) {
        round_trip("registered -> registered", r1, r2, n, s, 0);
        round_trip("registered -> registered", r1, r2, n, s, 1);
        round_trip("registered+5 -> registered+2", (char *)r1 + 5, (char *)r2 + 2, n - 5, s, 1);
    }
    if (reg1)
        CHECK_CU(cuMemHostUnregister(r1));
    if (reg2)
        CHECK_CU(cuMemHostUnregister(r2));

    /* After unregistering, the memory is ordinary pageable memory that still
     * works as a copy source/destination. */
    round_trip("unregistered pageable", r1, r2, n, s, 0);
    free(r1);
    free(r2);
}

static void no_alias_tests(void)
{
    static const size_t sizes[] = {64 * 1024, 4 * MiB};
    for (size_t i = 0; i < 2; i++) {
        size_t n = sizes[i];
        CUdeviceptr d = 0;
        if (!CHECK_CU(cuMemAlloc(&d, n)))
            continue;
        unsigned char *h = itest_malloc(n); /* small: brk heap, large: mmap */
        memset(h, 0, n);
        void *pin = NULL;
        int have_pin = QUIET_CU(cuMemAllocHost(&pin, n));
        int on_stack = 0;
        uintptr_t du = (uintptr_t)d;
        CHECK(!ranges_overlap(du, n, (uintptr_t)h, n),
              "device range [%#llx,+%zu) does not overlap malloc'd host range [%p,+%zu)",
              (unsigned long long)d, n, (void *)h, n);
        if (have_pin)
            CHECK(!ranges_overlap(du, n, (uintptr_t)pin, n),
                  "device range does not overlap pinned host range [%p,+%zu)", pin, n);
        CHECK(!ranges_overlap(du, n, (uintptr_t)&on_stack, sizeof on_stack),
              "device range does not contain a stack address");
        CHECK(!ranges_overlap(du, n, (uintptr_t)&no_alias_tests, 1),
              "device range does not contain program text");
        if (have_pin)
            QUIET_CU(cuMemFreeHost(pin));
        free(h);
        CHECK_CU(cuMemFree(d));
    }
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);
    CUstream s = NULL;
    REQUIRE_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));

    mem_info_tests();
    address_range_tests(ctx);
    pinned_tests(s);
    registered_tests(s);
    no_alias_tests();

    CHECK_CU(cuStreamDestroy(s));
    itest_teardown(dev);
    return itest_done();
}
