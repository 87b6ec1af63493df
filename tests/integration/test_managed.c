/*
 * test_managed.c - managed memory and mapped pinned memory, reached both by
 * host code and by kernels.
 *
 * Proves that:
 *   - the device reports managed memory and mapped host memory, without
 *     concurrent managed access (the coherence model of the shim);
 *   - cuMemAllocManaged returns one address that host code reads and writes
 *     directly and kernels use: host writes reach the kernel, kernel writes
 *     reach the host after cuCtxSynchronize / cuStreamSynchronize /
 *     cuEventSynchronize / a synchronous copy, including a single word the
 *     host changed between two launches;
 *   - copies and memsets with a managed pointer on either side see and
 *     leave the same bytes as host code; a synchronous copy between other
 *     buffers makes kernel writes visible and keeps host stores;
 *   - pointer attributes: IS_MANAGED, HOST_POINTER, DEVICE_POINTER;
 *   - many small managed allocations do not share pages (each keeps its own
 *     values), and bad arguments fail cleanly (0 bytes, bad flags, NULL,
 *     double free, cuMemFree of mapped host memory);
 *   - cuMemHostAlloc(DEVICEMAP) memory is used by a kernel through the
 *     pointer cuMemHostGetDevicePointer returns; unmapped pinned memory has
 *     no device pointer;
 *   - cuMemHostRegister(DEVICEMAP) gives the program's own buffer a device
 *     pointer that kernels update, seen in the buffer after synchronising;
 *   - cuMemPrefetchAsync to the device and back and cuMemAdvise are
 *     accepted on managed ranges (results still right), refused for other
 *     memory, ranges past the allocation and unknown devices or advice;
 *   - destroying a context with live managed memory leaves the process and
 *     the next context working.
 */
#include <stdlib.h>
#include <string.h>

#include "add_one_ptx.h"
#include "check.h"


static CUfunction add_one;

static CUresult launch_add_one(CUdeviceptr p, unsigned n, CUstream s)
{
    void *params[] = { &p, &n };

    return cuLaunchKernel(add_one, (n + 127) / 128, 1, 1, 128, 1, 1, 0, s, params, NULL);
}

/* Count of p[i] != a * i + b for i < n. */
static unsigned off_line(const unsigned *p, unsigned n, unsigned a, unsigned b)
{
    unsigned bad = 0;

    for (unsigned i = 0; i < n; i++) {
        bad += p[i] != a * i + b;
    }
    return bad;
}

/* Count of p[i] != base + i for i < n. */
static unsigned mismatches(const unsigned *p, unsigned n, unsigned base)
{
    return off_line(p, n, 1, base);
}

static void attribute_tests(CUdevice dev)
{
    int v = -1;

    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, dev));
    CHECK_EQ(v, 1, "MANAGED_MEMORY");
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, dev));
    CHECK_EQ(v, 0, "CONCURRENT_MANAGED_ACCESS");
    CHECK_CU(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, dev));
    CHECK_EQ(v, 1, "CAN_MAP_HOST_MEMORY");
}

static void managed_tests(void)
{
    const unsigned n = 100000;          /* 400 KB: several tracking blocks */
    CUdeviceptr d = 0;
    unsigned *p, *copy;
    CUstream s;
    CUevent e;

    if (!CHECK_CU(cuMemAllocManaged(&d, n * sizeof(unsigned), CU_MEM_ATTACH_GLOBAL))) {
        return;
    }
    p = (unsigned *)(uintptr_t)d;
    for (unsigned i = 0; i < n; i++) {
        p[i] = i;                       /* plain host stores */
    }
    CHECK_CU(launch_add_one(d, n, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ(mismatches(p, n, 1), 0, "host writes reached the kernel, its writes the host");

    /* One word changed between launches: only its block is dirty. */
    p[77777] = 5;
    CHECK_CU(launch_add_one(d, n, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ(p[77777], 6, "a single host store between launches");
    p[77777] = 77777 + 2;
    CHECK_EQ(mismatches(p, n, 2), 0, "every other word went up by one again");

    /* Stream and event synchronisation make kernel writes visible too. */
    REQUIRE_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    REQUIRE_CU(cuEventCreate(&e, 0));
    CHECK_CU(launch_add_one(d, n, s));
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_EQ(mismatches(p, n, 3), 0, "visible after cuStreamSynchronize");
    CHECK_CU(launch_add_one(d, n, s));
    CHECK_CU(cuEventRecord(e, s));
    CHECK_CU(cuEventSynchronize(e));
    CHECK_EQ(mismatches(p, n, 4), 0, "visible after cuEventSynchronize");

    /* Copies with a managed side agree with host code. */
    copy = malloc(n * sizeof(unsigned));
    if (copy) {
        p[10] = 123456;
        CHECK_CU(cuMemcpyDtoH(copy, d, n * sizeof(unsigned)));
        CHECK(copy[10] == 123456 && copy[11] == 4 + 11,
              "cuMemcpyDtoH from managed memory sees host stores");
        for (unsigned i = 0; i < n; i++) {
            copy[i] = 1000 + i;
        }
        CHECK_CU(cuMemcpyHtoD(d, copy, n * sizeof(unsigned)));
        CHECK_EQ(mismatches(p, n, 1000), 0, "cuMemcpyHtoD into managed memory, read by host");
        CHECK_CU(cuMemsetD32(d + 4 * 8, 0xabcdu, 16));
        CHECK_CU(cuCtxSynchronize());
        CHECK(p[7] == 1007 && p[8] == 0xabcd && p[23] == 0xabcd && p[24] == 1024,
              "cuMemsetD32 on managed memory, read by host");
        free(copy);
    }

    {
        unsigned managed = 0, type = 0;
        void *host = NULL;
        CUdeviceptr devp = 0;
        CHECK_CU(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, d + 64));
        CHECK_EQ(managed, 1, "IS_MANAGED");
        CHECK_CU(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d));
        CHECK_EQ(type, CU_MEMORYTYPE_DEVICE, "managed MEMORY_TYPE");
        CHECK_CU(cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, d + 64));
        CHECK(host == (void *)(p + 16), "HOST_POINTER is the pointer itself");
        CHECK_CU(cuPointerGetAttribute(&devp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, d + 64));
        CHECK(devp == d + 64, "DEVICE_POINTER is the pointer itself");
    }
    {
        /* A synchronous copy between other buffers is a synchronisation
         * point too; a copy that does not touch the managed buffer leaves
         * host stores to it alone. */
        CUdeviceptr other = 0;
        unsigned word = 0;
        if (CHECK_CU(cuMemAlloc(&other, 4096))) {
            p[0] = 50;
            CHECK_CU(launch_add_one(d, 1, NULL));
            CHECK_CU(cuMemcpyDtoH(&word, other, sizeof(word)));
            CHECK_EQ(p[0], 51, "kernel writes visible after an unrelated synchronous copy");
            p[1] = 60;
            CHECK_CU(cuMemcpyHtoD(other, &word, sizeof(word)));
            CHECK_EQ(p[1], 60, "an unrelated copy keeps a host store");
            CHECK_CU(launch_add_one(d, 2, NULL));
            CHECK_CU(cuCtxSynchronize());
            CHECK(p[0] == 52 && p[1] == 61, "and the next kernel sees it");
            cuMemFree(other);
        }
    }
    cuEventDestroy(e);
    cuStreamDestroy(s);
    CHECK_CU(cuMemFree(d));
    EXPECT_CU(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
}

static void many_small_tests(void)
{
    enum { COUNT = 64 };
    CUdeviceptr d[COUNT];
    unsigned ok = 0, got = 0;

    for (unsigned k = 0; k < COUNT; k++) {
        if (cuMemAllocManaged(&d[k], 40, CU_MEM_ATTACH_GLOBAL) != CUDA_SUCCESS) {
            CHECK(0, "small managed allocation %u", k);
            while (k--) {
                cuMemFree(d[k]);
            }
            return;
        }
        got++;
        for (unsigned i = 0; i < 10; i++) {
            ((unsigned *)(uintptr_t)d[k])[i] = k * 100 + i;
        }
    }
    for (unsigned k = 0; k < COUNT; k++) {
        launch_add_one(d[k], 10, NULL);
    }
    CHECK_CU(cuCtxSynchronize());
    for (unsigned k = 0; k < COUNT; k++) {
        ok += mismatches((unsigned *)(uintptr_t)d[k], 10, k * 100 + 1) == 0;
        cuMemFree(d[k]);
    }
    CHECK_EQ(ok, got, "64 small managed allocations keep their own values");
}

static void prefetch_advise_tests(CUdevice dev)
{
    const unsigned n = 20000;
    CUmemLocation gpu = { CU_MEM_LOCATION_TYPE_DEVICE, dev };
    CUmemLocation host = { CU_MEM_LOCATION_TYPE_HOST, 0 };
    CUmemLocation bad = { CU_MEM_LOCATION_TYPE_DEVICE, 999 };
    CUdeviceptr d = 0, plain = 0;
    unsigned *p;

    if (!CHECK_CU(cuMemAllocManaged(&d, n * sizeof(unsigned), CU_MEM_ATTACH_GLOBAL))) {
        return;
    }
    p = (unsigned *)(uintptr_t)d;
    for (unsigned i = 0; i < n; i++) {
        p[i] = 2 * i;
    }
    CHECK_CU(cuMemAdvise(d, n * sizeof(unsigned), CU_MEM_ADVISE_SET_READ_MOSTLY, gpu));
    CHECK_CU(cuMemAdvise(d, n * sizeof(unsigned), CU_MEM_ADVISE_SET_PREFERRED_LOCATION, gpu));
    CHECK_CU(cuMemPrefetchAsync(d, n * sizeof(unsigned), gpu, 0, NULL));
    CHECK_CU(launch_add_one(d, n, NULL));
    CHECK_CU(cuMemPrefetchAsync(d, n * sizeof(unsigned), host, 0, NULL));
    CHECK_CU(cuCtxSynchronize());
    CHECK_EQ(off_line(p, n, 2, 1), 0,
             "prefetched to the device and back: kernel results on the host");
    EXPECT_CU(cuMemPrefetchAsync(d, n * sizeof(unsigned), bad, 0, NULL),
              CUDA_ERROR_INVALID_DEVICE);
    EXPECT_CU(cuMemPrefetchAsync(d, 1 << 30, gpu, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemAdvise(d, 64, (CUmem_advise)77, gpu), CUDA_ERROR_INVALID_VALUE);
    if (CHECK_CU(cuMemAlloc(&plain, 4096))) {
        EXPECT_CU(cuMemPrefetchAsync(plain, 4096, gpu, 0, NULL), CUDA_ERROR_INVALID_VALUE);
        cuMemFree(plain);
    }
    cuMemFree(d);
}

static void bad_argument_tests(void)
{
    CUdeviceptr d = 0;

    EXPECT_CU(cuMemAllocManaged(&d, 0, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemAllocManaged(&d, 64, 3), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemAllocManaged(NULL, 64, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_INVALID_VALUE);
}

static void mapped_host_tests(void)
{
    const unsigned n = 5000;
    unsigned *h = NULL, *plain = NULL, *own;
    CUdeviceptr d = 0;

    if (CHECK_CU(cuMemHostAlloc((void **)&h, n * sizeof(unsigned), CU_MEMHOSTALLOC_DEVICEMAP))) {
        for (unsigned i = 0; i < n; i++) {
            h[i] = 3 * i;
        }
        CHECK_CU(cuMemHostGetDevicePointer(&d, h, 0));
        CHECK(d == (CUdeviceptr)(uintptr_t)h, "mapped host memory: one address");
        CHECK_CU(launch_add_one(d, n, NULL));
        CHECK_CU(cuCtxSynchronize());
        CHECK_EQ(off_line(h, n, 3, 1), 0, "a kernel updated mapped host memory");
        EXPECT_CU(cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
        EXPECT_CU(cuMemHostGetDevicePointer(&d, h, 1), CUDA_ERROR_INVALID_VALUE);
        CHECK_CU(cuMemFreeHost(h));
    }
    if (CHECK_CU(cuMemHostAlloc((void **)&plain, 4096, 0))) {
        EXPECT_CU(cuMemHostGetDevicePointer(&d, plain, 0), CUDA_ERROR_INVALID_VALUE);
        cuMemFreeHost(plain);
    }

    own = malloc(n * sizeof(unsigned));
    if (!own) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        own[i] = 7 * i;
    }
    if (CHECK_CU(cuMemHostRegister(own, n * sizeof(unsigned), CU_MEMHOSTREGISTER_DEVICEMAP))) {
        d = 0;
        CHECK_CU(cuMemHostGetDevicePointer(&d, own + 10, 0));
        CHECK(d != 0, "registered memory has a device pointer");
        d -= 10 * sizeof(unsigned);
        CHECK_CU(launch_add_one(d, n, NULL));
        CHECK_CU(cuCtxSynchronize());
        CHECK_EQ(off_line(own, n, 7, 1), 0,
                 "a kernel updated registered memory through its device pointer");
        own[0] = 41;
        CHECK_CU(launch_add_one(d, 1, NULL));
        CHECK_CU(cuCtxSynchronize());
        CHECK_EQ(own[0], 42, "a host store to registered memory reached the kernel");
        CHECK_CU(cuMemHostUnregister(own));
    }
    free(own);
}

static void context_gone_tests(CUdevice dev)
{
    CUcontext c, prev = NULL;
    CUdeviceptr d = 0;

    cuCtxGetCurrent(&prev);
    if (!CHECK_CU(cuCtxCreate(&c, NULL, 0, dev))) {
        return;
    }
    CHECK_CU(cuMemAllocManaged(&d, 1 << 20, CU_MEM_ATTACH_GLOBAL));
    if (d) {
        memset((void *)(uintptr_t)d, 0x5a, 1 << 20);
    }
    CHECK_CU(cuCtxDestroy(c));
    cuCtxSetCurrent(prev);
    d = 0;
    CHECK_CU(cuMemAllocManaged(&d, 4096, CU_MEM_ATTACH_GLOBAL));
    if (d) {
        ((unsigned *)(uintptr_t)d)[0] = 9;
        CHECK_CU(launch_add_one(d, 1, NULL));
        CHECK_CU(cuCtxSynchronize());
        CHECK_EQ(((unsigned *)(uintptr_t)d)[0], 10, "managed memory after a context died");
        cuMemFree(d);
    }
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;

    itest_setup(&dev, &ctx);
    attribute_tests(dev);
    REQUIRE_CU(cuModuleLoadData(&mod, add_one_ptx));
    REQUIRE_CU(cuModuleGetFunction(&add_one, mod, "add_one"));
    managed_tests();
    many_small_tests();
    prefetch_advise_tests(dev);
    bad_argument_tests();
    mapped_host_tests();
    context_gone_tests(dev);
    cuModuleUnload(mod);
    itest_teardown(dev);
    return itest_done();
}
