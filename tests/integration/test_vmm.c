/*
 * test_vmm.c - the virtual memory management API: cuMemAddressReserve,
 * cuMemCreate, cuMemMap, cuMemSetAccess and the rest.
 *
 * Proves, the way PyTorch's expandable segments and NCCL use the API:
 *   - the granularity is a power of two, minimum <= recommended;
 *   - reserve, create, map, set access; copies in and out through the
 *     mapped range, a memset, a kernel over it; cuMemGetAccess,
 *     cuMemGetAllocationPropertiesFromHandle, cuMemRetainAllocationHandle,
 *     cuMemGetAddressRange and cuPointerGetAttribute on mapped addresses;
 *   - one physical allocation mapped at two addresses: both are the
 *     same memory;
 *   - a reservation grown piece by piece (one cuMemCreate per piece,
 *     mapped one after the other), with a copy across the pieces' border
 *     and one cuMemUnmap of several pieces;
 *   - memory of device 0 used by a kernel on device 1 (access for both);
 *   - unmap before release and release before unmap, both freeing the
 *     memory (cuMemGetInfo's free memory goes down and back up);
 *   - refusals: unaligned sizes and addresses, handle values never given
 *     or already released, a mapping over a mapped range, unmapping part
 *     of a mapping, freeing a reservation with mappings (this project's
 *     rule), bad access descriptors and locations, shareable handle types
 *     other than a POSIX descriptor (accepted, not exportable).
 * The checks of this project's own rules are not made on NVIDIA's driver
 * (VGC_ITEST_REAL_DRIVER=1): tests/gpu/run.sh runs the rest natively too.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "check.h"
#include "add_one_ptx.h"

static size_t g_gran;
static CUdevice g_dev;

/*
 * Checks of this project's own rules, where NVIDIA's documentation says
 * nothing or its driver offers more (shareable handles, tile pools): not
 * made on NVIDIA's driver (VGC_ITEST_REAL_DRIVER=1, tests/gpu/run.sh).
 */
static int shim_rules(void)
{
    return !itest_skip_bogus_handles();
}

static CUmemAllocationProp prop_of(int dev)
{
    CUmemAllocationProp prop;

    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev;
    return prop;
}

static CUmemAccessDesc rw_of(int dev)
{
    CUmemAccessDesc d;

    memset(&d, 0, sizeof(d));
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.location.id = dev;
    d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return d;
}

static size_t free_mem(void)
{
    size_t f = 0, t = 0;

    CHECK_CU(cuMemGetInfo(&f, &t));
    return f;
}

static void test_granularity(void)
{
    CUmemAllocationProp prop = prop_of(g_dev);
    size_t min = 0, rec = 0;
    CUresult r = cuMemGetAllocationGranularity(&min, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    int vmm = -1, fd = -1;

    CHECK_CU(cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
                                  g_dev));
    CHECK_CU(cuDeviceGetAttribute(&fd, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
                                  g_dev));
    if (shim_rules()) {
        CHECK_EQ(fd, 0, "no shareable handles: POSIX file descriptors not offered");
    }
    if (r == CUDA_ERROR_NOT_SUPPORTED) {
        /* An aggregating vgcd (several upstreams) does not offer it. */
        CHECK_EQ(vmm, 0, "the device does not claim the API it lacks");
        return;
    }
    CHECK_EQ(vmm, 1, "the device claims VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED");
    REQUIRE_CU(r);
    CHECK_CU(cuMemGetAllocationGranularity(&rec, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    CHECK(min && !(min & (min - 1)), "minimum granularity %zu is a power of two", min);
    CHECK(rec >= min && rec % min == 0, "recommended granularity %zu is a multiple of %zu",
          rec, min);
    g_gran = min;
    EXPECT_CU(cuMemGetAllocationGranularity(&min, &prop, (CUmemAllocationGranularity_flags)7),
              CUDA_ERROR_INVALID_VALUE);
    prop.type = CU_MEM_ALLOCATION_TYPE_INVALID;
    EXPECT_CU(cuMemGetAllocationGranularity(&min, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
              CUDA_ERROR_INVALID_VALUE);
}

/* Reserve, create, map, access; copies, a memset and a kernel through it. */
static void test_basic(CUfunction add_one)
{
    CUmemAllocationProp prop = prop_of(g_dev), got;
    CUmemAccessDesc rw = rw_of(g_dev);
    CUmemLocation loc = rw.location;
    CUmemGenericAllocationHandle h = 0, h2 = 0;
    size_t size = 2 * g_gran, before = free_mem(), range = 0;
    CUdeviceptr va = 0, base = 0;
    unsigned long long flags = 99;
    unsigned *host = itest_malloc(size), *back = itest_malloc(size);
    unsigned n = (unsigned)(size / sizeof(unsigned)), mtype = 0;
    void *params[2];

    REQUIRE_CU(cuMemAddressReserve(&va, size, 0, 0, 0));
    CHECK(va && va % g_gran == 0, "reservation at %#llx is aligned", (unsigned long long)va);
    REQUIRE_CU(cuMemCreate(&h, size, &prop, 0));
    CHECK(h != 0, "cuMemCreate gives a handle");
    CHECK(before - free_mem() >= size, "cuMemCreate takes %zu bytes of free memory", size);
    REQUIRE_CU(cuMemMap(va, size, 0, h, 0));
    CHECK_CU(cuMemGetAccess(&flags, &loc, va));
    CHECK_EQ(flags, CU_MEM_ACCESS_FLAGS_PROT_NONE, "a new mapping is not accessible");
    REQUIRE_CU(cuMemSetAccess(va, size, &rw, 1));
    CHECK_CU(cuMemGetAccess(&flags, &loc, va + size - 1));
    CHECK_EQ(flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "cuMemGetAccess after cuMemSetAccess");

    itest_fill(host, size, 5);
    CHECK_CU(cuMemcpyHtoD(va, host, size));
    memset(back, 0, size);
    CHECK_CU(cuMemcpyDtoH(back, va, size));
    CHECK_BYTES(back, host, size, "HtoD then DtoH through the mapping");

    params[0] = &va;
    params[1] = &n;
    if (CHECK_CU(cuLaunchKernel(add_one, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params,
                                NULL)) &&
        CHECK_CU(cuCtxSynchronize())) {
        for (unsigned i = 0; i < n; i++) {
            host[i] += 1;
        }
        CHECK_CU(cuMemcpyDtoH(back, va, size));
        CHECK_BYTES(back, host, size, "a kernel added one to every word of the mapping");
    }
    CHECK_CU(cuMemsetD32(va + 4096, 0xabcdef01u, 16));
    CHECK_CU(cuMemcpyDtoH(back, va + 4096, 64));
    CHECK_EQ(back[15], 0xabcdef01u, "cuMemsetD32 on mapped memory");

    CHECK_CU(cuMemGetAllocationPropertiesFromHandle(&got, h));
    CHECK_EQ(got.type, CU_MEM_ALLOCATION_TYPE_PINNED, "properties: type");
    CHECK_EQ(got.location.type, CU_MEM_LOCATION_TYPE_DEVICE, "properties: location type");
    CHECK_EQ(got.location.id, g_dev, "properties: device");
    CHECK_CU(cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)(va + 100)));
    CHECK_EQ(h2, h, "cuMemRetainAllocationHandle gives the handle mapped there");
    CHECK_CU(cuMemRelease(h2));
    CHECK_CU(cuMemGetAddressRange(&base, &range, va + 12345));
    CHECK_EQ(base, va, "cuMemGetAddressRange: base of the mapping");
    CHECK_EQ(range, size, "cuMemGetAddressRange: size of the mapping");
    CHECK_CU(cuPointerGetAttribute(&mtype, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, va + 8));
    CHECK_EQ(mtype, CU_MEMORYTYPE_DEVICE, "cuPointerGetAttribute: device memory");

    /* Unmap first, then release: the memory goes with the release.  (The
     * first launch placed the module's globals: measure from here.) */
    before = free_mem();
    CHECK_CU(cuMemUnmap(va, size));
    CHECK_EQ(free_mem(), before, "unmapped but not released: still charged");
    EXPECT_CU(cuMemcpyDtoH(back, va, 64), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemRelease(h));
    CHECK_EQ(free_mem(), before + size, "released and unmapped: free memory is back");
    if (shim_rules()) {
        EXPECT_CU(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);    /* a stale handle */
    }
    CHECK_CU(cuMemAddressFree(va, size));
    free(host);
    free(back);
}

/* One allocation at two addresses; released before it is unmapped. */
static void test_alias(void)
{
    CUmemAllocationProp prop = prop_of(g_dev);
    CUmemAccessDesc rw = rw_of(g_dev);
    CUmemGenericAllocationHandle h = 0;
    CUdeviceptr va = 0;
    size_t before = free_mem();
    uint32_t v = 0x12345678, got = 0;

    REQUIRE_CU(cuMemAddressReserve(&va, 2 * g_gran, 0, 0, 0));
    REQUIRE_CU(cuMemCreate(&h, g_gran, &prop, 0));
    CHECK_CU(cuMemMap(va, g_gran, 0, h, 0));
    CHECK_CU(cuMemMap(va + g_gran, g_gran, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va, 2 * g_gran, &rw, 1));
    CHECK_CU(cuMemcpyHtoD(va + 64, &v, sizeof(v)));
    CHECK_CU(cuMemcpyDtoH(&got, va + g_gran + 64, sizeof(got)));
    CHECK_EQ(got, v, "a write at one address reads back at the other");
    CHECK_CU(cuMemsetD32(va + g_gran + 128, 7, 1));
    CHECK_CU(cuMemcpyDtoH(&got, va + 128, sizeof(got)));
    CHECK_EQ(got, 7, "and the other way round");

    /* Released while mapped: the mappings keep the memory alive. */
    CHECK_CU(cuMemRelease(h));
    CHECK(free_mem() < before, "released but mapped: still charged");
    CHECK_CU(cuMemcpyDtoH(&got, va + 64, sizeof(got)));
    CHECK_EQ(got, v, "released but mapped: still readable");
    if (shim_rules()) {
        EXPECT_CU(cuMemMap(va, g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    }
    CHECK_CU(cuMemUnmap(va, g_gran));
    CHECK(free_mem() < before, "one mapping left: still charged");
    CHECK_CU(cuMemUnmap(va + g_gran, g_gran));
    CHECK_EQ(free_mem(), before, "last mapping gone: free memory is back");
    CHECK_CU(cuMemAddressFree(va, 2 * g_gran));
}

/* PyTorch's expandable segments: one big reservation, grown a piece at a
 * time, each piece its own allocation. */
static void test_expandable(void)
{
    enum { PIECES = 6 };
    CUmemAllocationProp prop = prop_of(g_dev);
    CUmemAccessDesc rw = rw_of(g_dev);
    CUmemGenericAllocationHandle h[PIECES];
    size_t before = free_mem(), total = 64 * g_gran, span = 2 * g_gran;
    CUdeviceptr va = 0;
    unsigned char *in = itest_malloc(span), *out = itest_malloc(span);

    REQUIRE_CU(cuMemAddressReserve(&va, total, 0, 0, 0));
    for (int i = 0; i < PIECES; i++) {
        REQUIRE_CU(cuMemCreate(&h[i], g_gran, &prop, 0));
        CHECK_CU(cuMemMap(va + i * g_gran, g_gran, 0, h[i], 0));
        CHECK_CU(cuMemSetAccess(va + i * g_gran, g_gran, &rw, 1));
        CHECK_CU(cuMemRelease(h[i]));   /* as PyTorch keeps it: mapped only */
    }
    CHECK(before - free_mem() >= PIECES * g_gran, "six pieces charged");
    /* A copy across the borders of three pieces. */
    itest_fill(in, span, 9);
    CHECK_CU(cuMemcpyHtoD(va + g_gran / 2, in, span));
    memset(out, 0, span);
    CHECK_CU(cuMemcpyDtoH(out, va + g_gran / 2, span));
    CHECK_BYTES(out, in, span, "a copy across pieces");
    CHECK_CU(cuMemcpyDtoD(va + 4 * g_gran, va + g_gran / 2, span));
    CHECK_CU(cuMemcpyDtoH(out, va + 4 * g_gran, span));
    CHECK_BYTES(out, in, span, "a device copy across pieces");
    EXPECT_CU(cuMemcpyDtoH(out, va + 5 * g_gran + g_gran / 2, g_gran),
              CUDA_ERROR_INVALID_VALUE);

    /* Shrink: the last two at once, then the rest. */
    EXPECT_CU(cuMemUnmap(va + 4 * g_gran, g_gran + g_gran / 2), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemUnmap(va + 4 * g_gran, 2 * g_gran));
    if (shim_rules()) {
        EXPECT_CU(cuMemAddressFree(va, total), CUDA_ERROR_INVALID_VALUE);
    }
    CHECK_CU(cuMemUnmap(va, 4 * g_gran));
    CHECK_EQ(free_mem(), before, "every piece unmapped: free memory is back");
    CHECK_CU(cuMemAddressFree(va, total));
    free(in);
    free(out);
}

static void test_refusals(void)
{
    CUmemAllocationProp prop = prop_of(g_dev);
    CUmemAccessDesc rw = rw_of(g_dev), bad;
    CUmemGenericAllocationHandle h = 0, h2 = 0;
    CUdeviceptr va = 0, other = 0, p = 0;
    unsigned long long flags;
    CUmemLocation loc = rw.location;
    int ndev = 0;

    REQUIRE_CU(cuMemAddressReserve(&va, 4 * g_gran, 0, 0, 0));
    EXPECT_CU(cuMemCreate(&h, g_gran + 4096, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemCreate(&h, 0, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 1), CUDA_ERROR_INVALID_VALUE);
    prop.location.id = 999;
    CHECK(cuMemCreate(&h, g_gran, &prop, 0) != CUDA_SUCCESS, "cuMemCreate on device 999 fails");
    prop = prop_of(g_dev);
    prop.location.type = CU_MEM_LOCATION_TYPE_INVALID;
    EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    if (shim_rules()) {
        prop = prop_of(g_dev);
        prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_WIN32;
        EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 0), CUDA_ERROR_NOT_SUPPORTED);
        prop.requestedHandleTypes = (CUmemAllocationHandleType)0x400;
        EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 0), CUDA_ERROR_INVALID_VALUE);
        prop = prop_of(g_dev);
        prop.allocFlags.usage = CU_MEM_CREATE_USAGE_TILE_POOL;
        EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 0), CUDA_ERROR_NOT_SUPPORTED);
        prop = prop_of(g_dev);
        prop.win32HandleMetaData = &prop;
        EXPECT_CU(cuMemCreate(&h, g_gran, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    }
    /* What NCCL and PyTorch ask for: made (not exportable through the shim). */
    prop = prop_of(g_dev);
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    if (CHECK_CU(cuMemCreate(&h, g_gran, &prop, 0))) {
        int fd = -1;

        if (shim_rules()) {
            EXPECT_CU(cuMemExportToShareableHandle(&fd, h,
                                                   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                      CUDA_ERROR_NOT_SUPPORTED);
        }
        CHECK_CU(cuMemRelease(h));
    }
    prop = prop_of(g_dev);
    EXPECT_CU(cuMemAddressReserve(&p, 4096 + 1, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemAddressReserve(&p, g_gran, 3, 0, 0), CUDA_ERROR_INVALID_VALUE);

    REQUIRE_CU(cuMemCreate(&h, 2 * g_gran, &prop, 0));
    if (!itest_skip_bogus_handles()) {
        EXPECT_CU(cuMemMap(va, g_gran, 0, h ^ 0x5a5a000000ULL, 0), CUDA_ERROR_INVALID_VALUE);
        EXPECT_CU(cuMemMap(va, g_gran, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
        EXPECT_CU(cuMemRelease(0x1234567ULL), CUDA_ERROR_INVALID_VALUE);
        EXPECT_CU(cuMemRelease(~0ULL), CUDA_ERROR_INVALID_VALUE);
        EXPECT_CU(cuMemGetAllocationPropertiesFromHandle(&prop, h + 1), CUDA_ERROR_INVALID_VALUE);
        prop = prop_of(g_dev);
    }
    EXPECT_CU(cuMemMap(va + 4096, g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemMap(va, g_gran + 4096, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemMap(va, 4 * g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemMap(va, g_gran, 0, h, 1), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemMap(va + 3 * g_gran, 2 * g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    REQUIRE_CU(cuMemMap(va, 2 * g_gran, 0, h, 0));
    EXPECT_CU(cuMemMap(va + g_gran, g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemMap(va, 2 * g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemUnmap(va, g_gran), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemUnmap(va + 2 * g_gran, g_gran), CUDA_ERROR_INVALID_VALUE);
    if (shim_rules()) {
        EXPECT_CU(cuMemAddressFree(va, 4 * g_gran), CUDA_ERROR_INVALID_VALUE);
    }
    EXPECT_CU(cuMemAddressFree(va, 2 * g_gran), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemFree(va), CUDA_ERROR_INVALID_VALUE);

    /* Access descriptors. */
    EXPECT_CU(cuMemSetAccess(va, 2 * g_gran, &rw, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemSetAccess(va, 4 * g_gran, &rw, 1), CUDA_ERROR_INVALID_VALUE);
    bad = rw;
    bad.flags = (CUmemAccess_flags)2;
    EXPECT_CU(cuMemSetAccess(va, 2 * g_gran, &bad, 1), CUDA_ERROR_INVALID_VALUE);
    bad = rw;
    bad.location.type = CU_MEM_LOCATION_TYPE_INVALID;
    EXPECT_CU(cuMemSetAccess(va, 2 * g_gran, &bad, 1), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuDeviceGetCount(&ndev));
    bad = rw;
    bad.location.id = ndev + 5;
    CHECK(cuMemSetAccess(va, 2 * g_gran, &bad, 1) != CUDA_SUCCESS,
          "cuMemSetAccess for a device that does not exist fails");
    {
        CUmemAccessDesc many[100];

        for (int i = 0; i < 100; i++) {
            many[i] = rw;
        }
        CUresult r = cuMemSetAccess(va, 2 * g_gran, many, 100);

        CHECK(r == CUDA_SUCCESS || r == CUDA_ERROR_INVALID_VALUE,
              "100 descriptors: done or refused (%s)", itest_errname(r));
    }
    loc.type = CU_MEM_LOCATION_TYPE_INVALID;
    EXPECT_CU(cuMemGetAccess(&flags, &loc, va), CUDA_ERROR_INVALID_VALUE);
    loc = rw.location;
    EXPECT_CU(cuMemGetAccess(&flags, &loc, va + 3 * g_gran), CUDA_ERROR_INVALID_VALUE);
    EXPECT_CU(cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)(va + 3 * g_gran)),
              CUDA_ERROR_INVALID_VALUE);

    /* Reservations: a hint is a hint; frees take exactly what was reserved. */
    CHECK_CU(cuMemAddressReserve(&other, g_gran, 0, va, 0));
    CHECK(other != va, "a hint at a taken address gives another one");
    EXPECT_CU(cuMemAddressFree(other + g_gran, g_gran), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(cuMemAddressFree(other, g_gran));
    EXPECT_CU(cuMemAddressFree(other, g_gran), CUDA_ERROR_INVALID_VALUE);

    CHECK_CU(cuMemUnmap(va, 2 * g_gran));
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, 4 * g_gran));
    if (shim_rules()) {
        EXPECT_CU(cuMemMap(va, g_gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    }
}

/*
 * Memory of device 0 used by a kernel on device 1, as NCCL and PyTorch's
 * peers do: with access granted to both devices in one cuMemSetAccess,
 * and checked per device with cuMemGetAccess.
 */
static void test_two_devices(void)
{
    CUmemAllocationProp prop = prop_of(g_dev);
    CUmemAccessDesc both[2] = { rw_of(g_dev), rw_of(1) };
    CUmemGenericAllocationHandle h = 0;
    CUdeviceptr va = 0;
    unsigned long long flags = 0;
    CUcontext ctx1, ctx0;
    CUdevice dev1;
    CUmodule mod;
    CUfunction f;
    unsigned words[4] = { 1, 2, 3, 4 }, n = 4;
    void *params[2] = { &va, &n };
    int ndev = 0;

    CHECK_CU(cuDeviceGetCount(&ndev));
    if (ndev < 2 || g_dev != 0) {
        itest_skip("a kernel on device 1 over device 0's memory", "one device");
        return;
    }
    REQUIRE_CU(cuMemAddressReserve(&va, g_gran, 0, 0, 0));
    REQUIRE_CU(cuMemCreate(&h, g_gran, &prop, 0));
    REQUIRE_CU(cuMemMap(va, g_gran, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va, g_gran, both, 2));
    CHECK_CU(cuMemGetAccess(&flags, &both[1].location, va));
    CHECK_EQ(flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "device 1 may read and write");
    CHECK_CU(cuMemcpyHtoD(va, words, sizeof(words)));

    CHECK_CU(cuCtxGetCurrent(&ctx0));
    REQUIRE_CU(cuDeviceGet(&dev1, 1));
    REQUIRE_CU(cuDevicePrimaryCtxRetain(&ctx1, dev1));
    REQUIRE_CU(cuCtxSetCurrent(ctx1));
    if (CHECK_CU(cuModuleLoadData(&mod, add_one_ptx))) {
        CHECK_CU(cuModuleGetFunction(&f, mod, "add_one"));
        CHECK_CU(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
        CHECK_CU(cuCtxSynchronize());
        CHECK_CU(cuModuleUnload(mod));
    }
    CHECK_CU(cuCtxSetCurrent(ctx0));
    CHECK_CU(cuDevicePrimaryCtxRelease(dev1));
    memset(words, 0, sizeof(words));
    CHECK_CU(cuMemcpyDtoH(words, va, sizeof(words)));
    CHECK(words[0] == 2 && words[3] == 5, "device 1's kernel wrote device 0's memory (%u..%u)",
          words[0], words[3]);
    CHECK_CU(cuMemUnmap(va, g_gran));
    CHECK_CU(cuMemRelease(h));
    CHECK_CU(cuMemAddressFree(va, g_gran));
}

/* Left behind on purpose: vgcd frees it when the process ends. */
static void test_leak(void)
{
    CUmemAllocationProp prop = prop_of(g_dev);
    CUmemAccessDesc rw = rw_of(g_dev);
    CUmemGenericAllocationHandle h = 0;
    CUdeviceptr va = 0;

    CHECK_CU(cuMemAddressReserve(&va, g_gran, 0, 0, 0));
    CHECK_CU(cuMemCreate(&h, g_gran, &prop, 0));
    CHECK_CU(cuMemMap(va, g_gran, 0, h, 0));
    CHECK_CU(cuMemSetAccess(va, g_gran, &rw, 1));
}

int main(void)
{
    CUcontext ctx;
    CUmodule mod;
    CUfunction add_one;

    itest_setup(&g_dev, &ctx);
    test_granularity();
    if (!g_gran) {
        itest_skip("the VMM API", "CUDA_ERROR_NOT_SUPPORTED here");
        itest_teardown(g_dev);
        return itest_done();
    }
    REQUIRE_CU(cuModuleLoadData(&mod, add_one_ptx));
    REQUIRE_CU(cuModuleGetFunction(&add_one, mod, "add_one"));
    test_basic(add_one);
    test_alias();
    test_expandable();
    test_refusals();
    test_two_devices();
    test_leak();
    CHECK_CU(cuModuleUnload(mod));
    itest_teardown(g_dev);
    return itest_done();
}
