/*
 * test_modules.c - loading PTX, looking up functions and globals, launching.
 *
 * Proves that:
 *   - cuModuleLoadData accepts a hand-written PTX 9.0 / sm_75 module (the
 *     form nvcc -ptx emits), and rejects text that is not PTX;
 *   - cuModuleGetFunction finds the .entry and returns CUDA_ERROR_NOT_FOUND
 *     for a name that is not in the module;
 *   - cuModuleGetGlobal returns a device pointer and the declared size of a
 *     .global variable (either output may be NULL), CUDA_ERROR_NOT_FOUND for a
 *     missing name; initialized globals hold their initializer, uninitialized
 *     ones read as zeros, and copies to / from a global work;
 *   - two loads of the same module get distinct globals;
 *   - cuLaunchKernel either runs the kernel (CUDA_SUCCESS, then
 *     cuCtxSynchronize succeeds and the data is incremented: a real GPU or an
 *     executor that can run PTX) or returns CUDA_ERROR_NOT_SUPPORTED (the
 *     cpu executor without an interpreter) - nothing else - and the context
 *     keeps working either way;
 *   - cuModuleUnload succeeds.
 */
#include "add_one_ptx.h"
#include "check.h"


static void globals_tests(CUmodule mod)
{
    CUdeviceptr tab = 0, ini = 0;
    size_t bytes = 0;

    if (CHECK_CU(cuModuleGetGlobal(&tab, &bytes, mod, "g_table"))) {
        CHECK(tab != 0, "g_table has a non-zero device address");
        CHECK_EQ(bytes, 256, "g_table size");
    }
    bytes = 0;
    CHECK_CU(cuModuleGetGlobal(NULL, &bytes, mod, "g_init"));
    CHECK_EQ(bytes, 16, "g_init size (dptr output NULL)");
    CHECK_CU(cuModuleGetGlobal(&ini, NULL, mod, "g_init"));
    CHECK(ini != 0 && ini != tab, "g_init has its own device address (bytes output NULL)");

    CUdeviceptr dp = 0;
    EXPECT_CU(cuModuleGetGlobal(&dp, &bytes, mod, "no_such_global"), CUDA_ERROR_NOT_FOUND);

    if (ini) {
        uint32_t v[4] = {0, 0, 0, 0};
        if (CHECK_CU(cuMemcpyDtoH(v, ini, sizeof v)))
            CHECK(v[0] == 11 && v[1] == 22 && v[2] == 33 && v[3] == 44,
                  "g_init holds its initializer {11,22,33,44} (got {%u,%u,%u,%u})", v[0], v[1],
                  v[2], v[3]);
    }
    if (tab) {
        unsigned char zero[256], got[256], pat[256];
        memset(zero, 0, sizeof zero);
        memset(got, 0xFF, sizeof got);
        if (CHECK_CU(cuMemcpyDtoH(got, tab, sizeof got)))
            CHECK_BYTES(got, zero, sizeof got, "uninitialized g_table reads as zeros");

        itest_fill(pat, sizeof pat, 42);
        CHECK_CU(cuMemcpyHtoD(tab, pat, sizeof pat));
        memset(got, 0, sizeof got);
        if (CHECK_CU(cuMemcpyDtoH(got, tab, sizeof got)))
            CHECK_BYTES(got, pat, sizeof pat, "copy to and from g_table");

        /* partial, unaligned update inside the global */
        unsigned char part[13];
        itest_fill(part, sizeof part, 43);
        memcpy(pat + 7, part, sizeof part);
        CHECK_CU(cuMemcpyHtoD(tab + 7, part, sizeof part));
        memset(got, 0, sizeof got);
        if (CHECK_CU(cuMemcpyDtoH(got, tab, sizeof got)))
            CHECK_BYTES(got, pat, sizeof pat, "13-byte write at g_table+7");

        /* memset on a global */
        memset(pat, 0x5C, sizeof pat);
        CHECK_CU(cuMemsetD8(tab, 0x5C, sizeof pat));
        memset(got, 0, sizeof got);
        if (CHECK_CU(cuMemcpyDtoH(got, tab, sizeof got)))
            CHECK_BYTES(got, pat, sizeof pat, "cuMemsetD8 on g_table");
    }
}

static void launch_test(CUfunction f, CUstream s, const char *where)
{
    const unsigned n = 1000;
    uint32_t in[1000], out[1000];
    CUdeviceptr d = 0;
    for (unsigned i = 0; i < n; i++)
        in[i] = i * 7u + 1u;
    if (!CHECK_CU(cuMemAlloc(&d, sizeof in)))
        return;
    CHECK_CU(cuMemcpyHtoD(d, in, sizeof in));

    unsigned nn = n;
    void *params[] = {&d, &nn};
    CUresult r = cuLaunchKernel(f, (n + 127) / 128, 1, 1, 128, 1, 1, 0, s, params, NULL);
    char detail[160];
    snprintf(detail, sizeof detail, "got %s want CUDA_SUCCESS or CUDA_ERROR_NOT_SUPPORTED",
             itest_errname(r));
    itest_report(r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_SUPPORTED, __FILE__, __LINE__, detail,
                 "cuLaunchKernel(add_one) on %s -> %s", where,
                 r == CUDA_SUCCESS ? "launched" : "not supported by this executor");

    /*
     * Launches are asynchronous: an executor that cannot run the kernel may
     * say so at the launch or, like any execution error, at the next
     * synchronising call.  Either way a refused launch changes nothing and
     * leaves no sticky error behind.
     */
    if (r == CUDA_SUCCESS) {
        r = cuCtxSynchronize();
        snprintf(detail, sizeof detail, "got %s want CUDA_SUCCESS or CUDA_ERROR_NOT_SUPPORTED",
                 itest_errname(r));
        itest_report(r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_SUPPORTED, __FILE__, __LINE__,
                     detail, "cuCtxSynchronize after the launch on %s -> %s", where,
                     r == CUDA_SUCCESS ? "ran" : "refused at the synchronising call");
    }
    memset(out, 0, sizeof out);
    if (r == CUDA_SUCCESS) {
        if (CHECK_CU(cuMemcpyDtoH(out, d, sizeof out))) {
            unsigned bad = 0;
            for (unsigned i = 0; i < n; i++)
                bad += out[i] != in[i] + 1u;
            CHECK(bad == 0, "kernel incremented all %u elements (%u wrong)", n, bad);
        }
    } else {
        CHECK_CU(cuCtxSynchronize());
        if (CHECK_CU(cuMemcpyDtoH(out, d, sizeof out)))
            CHECK_BYTES(out, in, sizeof in, "data untouched by the refused launch");
    }
    CHECK_CU(cuMemFree(d));
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    itest_setup(&dev, &ctx);

    CUmodule mod = NULL, mod2 = NULL, bad = NULL;
    REQUIRE_CU(cuModuleLoadData(&mod, add_one_ptx));
    CHECK(mod != NULL, "module handle is non-NULL");

    CUfunction f = NULL, g = NULL;
    CHECK_CU(cuModuleGetFunction(&f, mod, "add_one"));
    CHECK(f != NULL, "function handle is non-NULL");
    EXPECT_CU(cuModuleGetFunction(&g, mod, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    /* A global variable is not a function. */
    EXPECT_CU(cuModuleGetFunction(&g, mod, "g_table"), CUDA_ERROR_NOT_FOUND);

    globals_tests(mod);

    /* A second load of the same image has its own globals. */
    if (CHECK_CU(cuModuleLoadData(&mod2, add_one_ptx))) {
        CUdeviceptr t1 = 0, t2 = 0;
        size_t b1 = 0, b2 = 0;
        CHECK_CU(cuModuleGetGlobal(&t1, &b1, mod, "g_table"));
        CHECK_CU(cuModuleGetGlobal(&t2, &b2, mod2, "g_table"));
        CHECK(t1 && t2 && (t1 + b1 <= t2 || t2 + b2 <= t1),
              "two loads of one module have disjoint g_table storage");
        unsigned char got[256], zero[256];
        memset(zero, 0, sizeof zero);
        memset(got, 0xFF, sizeof got);
        if (t2 && CHECK_CU(cuMemcpyDtoH(got, t2, sizeof got)))
            CHECK_BYTES(got, zero, sizeof got,
                        "second module's g_table is zero despite writes to the first");
        CHECK_CU(cuModuleUnload(mod2));
    }

    if (f) {
        launch_test(f, 0, "stream 0");
        CUstream s = NULL;
        if (CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING))) {
            launch_test(f, s, "a created stream");
            CHECK_CU(cuStreamDestroy(s));
        }
    }

    /* Not PTX at all. */
    static const char garbage[] = "this is not a PTX module\n";
    CUresult r = cuModuleLoadData(&bad, garbage);
    char detail[160];
    snprintf(detail, sizeof detail, "got %s want CUDA_ERROR_INVALID_PTX or CUDA_ERROR_INVALID_IMAGE",
             itest_errname(r));
    itest_report(r == CUDA_ERROR_INVALID_PTX || r == CUDA_ERROR_INVALID_IMAGE, __FILE__,
                 __LINE__, detail, "cuModuleLoadData(garbage text) is rejected");
    if (r == CUDA_SUCCESS)
        cuModuleUnload(bad);

    CHECK_CU(cuModuleUnload(mod));
    CHECK_CU(cuCtxSynchronize());
    itest_teardown(dev);
    return itest_done();
}
