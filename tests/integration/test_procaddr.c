/*
 * test_procaddr.c - how NVIDIA's runtime finds driver functions.
 *
 * cudart dlopens libcuda.so.1 and resolves everything with
 * cuGetProcAddress_v2(base name, CUDA version, flags).  This proves the
 * lookup rule (highest ABI not above the version asked for; the per-thread
 * variant with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM), the probe
 * with an empty name, refusals, that resolved pointers work, and that an
 * unimplemented call returns CUDA_ERROR_NOT_SUPPORTED and is logged once.
 * Checks that compare with the shim's own exports run only on the shim.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "check.h"

typedef CUresult (*pfn_get_proc_v2)(const char *, void **, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult *);

static void *lib;
static pfn_get_proc_v2 get_proc;
static int is_shim;

static void expect_resolves_to(const char *base, int version, cuuint64_t flags,
                               const char *symbol)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r = get_proc(base, &fn, version, flags, &found);

    CHECK(r == CUDA_SUCCESS && fn && found == CU_GET_PROC_ADDRESS_SUCCESS,
          "cuGetProcAddress_v2(%s, %d, %llu) resolves (got %s)", base, version,
          (unsigned long long)flags, itest_errname(r));
    if (is_shim && r == CUDA_SUCCESS) {
        CHECK(fn == dlsym(lib, symbol), "%s @ %d flags %llu is the export %s", base, version,
              (unsigned long long)flags, symbol);
    }
}

static void expect_refused(const char *base, int version,
                           CUdriverProcAddressQueryResult want)
{
    void *fn = (void *)1;
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SUCCESS;
    CUresult r = get_proc(base, &fn, version, 0, &found);

    CHECK(r == CUDA_ERROR_NOT_FOUND && fn == NULL && found == want,
          "cuGetProcAddress_v2(\"%s\", %d) is refused (got %s, found=%d)", base, version,
          itest_errname(r), (int)found);
}

/* With VGC_LOG=1 the shim names an unimplemented call once, not per call. */
static void unsupported_is_logged_once(void)
{
    CUgraph g;
    FILE *log = tmpfile();
    int saved = dup(2);
    char line[512];
    int mentions = 0;

    if (!log || saved < 0) {
        itest_skip("unsupported calls logged once", "no temporary file");
        return;
    }
    fflush(stderr);
    dup2(fileno(log), 2);
    CUresult r1 = cuGraphCreate(&g, 0);
    CUresult r2 = cuGraphCreate(&g, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(log);
    while (fgets(line, sizeof(line), log)) {
        mentions += strstr(line, "cuGraphCreate") != NULL;
    }
    fclose(log);
    if (r1 == CUDA_SUCCESS) {
        itest_skip("unsupported calls logged once", "this driver implements cuGraphCreate");
        cuGraphDestroy(g);
        return;
    }
    EXPECT_CU(r1, CUDA_ERROR_NOT_SUPPORTED);
    EXPECT_CU(r2, CUDA_ERROR_NOT_SUPPORTED);
    CHECK(mentions == 1, "cuGraphCreate named once in the log with VGC_LOG=1 (%d times)",
          mentions);
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    void *fn = NULL;
    int count = -1;

    setenv("VGC_LOG", "1", 1);      /* before the driver reads it */
    itest_watchdog();
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!lib) {
        lib = dlopen("libcuda.so.1", RTLD_NOW);
    }
    if (!lib) {
        itest_bail("cannot dlopen libcuda.so.1: %s", dlerror());
    }
    get_proc = (pfn_get_proc_v2)dlsym(lib, "cuGetProcAddress_v2");
    if (!get_proc) {
        itest_bail("libcuda.so.1 has no cuGetProcAddress_v2");
    }
    is_shim = dlsym(lib, "vgc_shim_version") != NULL;

    /* cudart's first call: an empty name must say "not found", not "stub" */
    {
        void *p = NULL;
        CUresult r = get_proc("", &p, 13000, 0, NULL);
        CHECK(r == CUDA_ERROR_NOT_FOUND, "probe with an empty name -> CUDA_ERROR_NOT_FOUND "
              "(got %s)", itest_errname(r));
    }
    itest_setup(&dev, &ctx);

    expect_resolves_to("cuMemAlloc", 13000, 0, "cuMemAlloc_v2");
    expect_resolves_to("cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    expect_resolves_to("cuMemAlloc", 3010, 0, "cuMemAlloc");
    expect_resolves_to("cuCtxGetDevice", 12000, 0, "cuCtxGetDevice");
    expect_resolves_to("cuCtxGetDevice", 13000, 0, "cuCtxGetDevice_v2");
    expect_resolves_to("cuDevicePrimaryCtxRelease", 7000, 0, "cuDevicePrimaryCtxRelease");
    expect_resolves_to("cuDevicePrimaryCtxRelease", 11000, 0, "cuDevicePrimaryCtxRelease_v2");
    expect_resolves_to("cuMemcpyHtoDAsync", 13000, 0, "cuMemcpyHtoDAsync_v2");
    expect_resolves_to("cuMemcpyHtoDAsync", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                       "cuMemcpyHtoDAsync_v2_ptsz");
    expect_resolves_to("cuMemcpyHtoD", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                       "cuMemcpyHtoD_v2_ptds");
    /* no per-thread variant: the plain one */
    expect_resolves_to("cuMemAlloc", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                       "cuMemAlloc_v2");
    expect_refused("cuNoSuchFunction", 13000, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    expect_refused("cuMemAlloc_v2", 13000, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    expect_refused("cuLibraryLoadData", 11000, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

    /* a resolved pointer is a working function */
    if (get_proc("cuDeviceGetCount", &fn, 13000, 0, NULL) == CUDA_SUCCESS && fn) {
        CUresult r = ((CUresult (*)(int *))fn)(&count);
        CHECK(r == CUDA_SUCCESS && count >= 1, "cuDeviceGetCount through the resolved "
              "pointer: %s, %d devices", itest_errname(r), count);
    } else {
        CHECK(0, "cuDeviceGetCount resolves");
    }
    /* the per-thread variant of an async call works on the NULL stream */
    if (get_proc("cuMemsetD8Async", &fn, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                 NULL) == CUDA_SUCCESS && fn) {
        CUdeviceptr d;
        unsigned char back[64];
        REQUIRE_CU(cuMemAlloc(&d, sizeof(back)));
        CUresult r = ((CUresult (*)(CUdeviceptr, unsigned char, size_t, CUstream))fn)(
            d, 0x5a, sizeof(back), NULL);
        CHECK(r == CUDA_SUCCESS, "cuMemsetD8Async_ptsz on the per-thread stream: %s",
              itest_errname(r));
        CHECK_CU(cuCtxSynchronize());
        CHECK_CU(cuMemcpyDtoH(back, d, sizeof(back)));
        CHECK(back[0] == 0x5a && back[63] == 0x5a, "per-thread stream memset landed");
        CHECK_CU(cuMemFree(d));
    }
    {
        int v = 0;
        CHECK_CU(cuDriverGetVersion(&v));
        CHECK(v >= 13000, "cuDriverGetVersion %d >= 13000 (cudart 13 requires it)", v);
    }
    unsupported_is_logged_once();
    itest_teardown(dev);
    return itest_done();
}
