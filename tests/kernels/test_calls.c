/*
 * test_calls.c - kernels calling device functions (non-inlined,
 * recursive, struct-returning, warp-synchronous), printf, and the
 * occupancy calls, through the driver API.  The kernels (calls.cu) come
 * as an -O3 fatbin and as -G PTX, where every function stays a call;
 * their paths arrive as VGC_CALLS_FATBIN / VGC_CALLS_PTX_G (or argv).
 *
 * printf output goes to the daemon's stderr ("[kernel calls_printf] ..."):
 * here we check that the kernel runs and what printf returns.
 *
 * Prints one "ok" / "not ok" line per check; exits 0 when all pass.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tc_fails;

#define CK(call) do {                                                   \
        CUresult r_ = (call);                                           \
        if (r_ != CUDA_SUCCESS) {                                       \
            printf("Bail out! %s:%d: %s = %d\n", __FILE__, __LINE__,    \
                   #call, (int)r_);                                     \
            exit(2);                                                    \
        }                                                               \
    } while (0)

static void tc_check(bool ok, const char *what)
{
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    fflush(stdout);
    tc_fails += !ok;
}

static char *tc_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        printf("Bail out! cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        printf("Bail out! cannot read %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_calls(CUmodule mod, const char *label)
{
    enum { N = 200, T = 64, B = (N + T - 1) / T };
    static int out[N], wsum[B * T / 32];
    static float fo[N];
    static long long lo[N];
    CUdeviceptr dout, dfo, dlo, dws;
    CUfunction f;
    int n = N, i, bad = 0, wbad = 0;
    void *args[] = { &dout, &dfo, &dlo, &dws, &n };
    char what[128];

    CK(cuMemAlloc(&dout, sizeof(out)));
    CK(cuMemAlloc(&dfo, sizeof(fo)));
    CK(cuMemAlloc(&dlo, sizeof(lo)));
    CK(cuMemAlloc(&dws, sizeof(wsum)));
    CK(cuModuleGetFunction(&f, mod, "calls_kernel"));
    CK(cuLaunchKernel(f, B, 1, 1, T, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(out, dout, sizeof(out)));
    CK(cuMemcpyDtoH(fo, dfo, sizeof(fo)));
    CK(cuMemcpyDtoH(lo, dlo, sizeof(lo)));
    CK(cuMemcpyDtoH(wsum, dws, sizeof(wsum)));
    for (i = 0; i < N; i++) {
        int fact = 1, j;

        for (j = 2; j <= i % 10; j++) {
            fact *= j;
        }
        bad += out[i] != ((i & 1) ? i * i : fact);
        bad += fo[i] != 1.5f * 2.0f + (float)i;
        bad += lo[i] != ((long long)i << 33) + i + (long long)(i * 0.5f);
    }
    for (i = 0; i < B * T / 32; i++) {
        wbad += wsum[i] != 32 * (32 * i) + 31 * 32 / 2;
    }
    snprintf(what, sizeof(what), "device-function calls (%s): divergent, "
             "recursive, struct results", label);
    tc_check(bad == 0, what);
    snprintf(what, sizeof(what), "shuffles inside a called function (%s)",
             label);
    tc_check(wbad == 0, what);
    cuMemFree(dout);
    cuMemFree(dfo);
    cuMemFree(dlo);
    cuMemFree(dws);
}

static void test_printf(CUmodule mod, const char *label)
{
    enum { N = 3 };
    int ret[N], n = N, i, bad = 0;
    CUdeviceptr dret;
    CUfunction f;
    void *args[] = { &dret, &n };
    char what[96];

    CK(cuMemAlloc(&dret, sizeof(ret)));
    CK(cuMemsetD8(dret, 0xff, sizeof(ret)));
    CK(cuModuleGetFunction(&f, mod, "calls_printf"));
    CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(ret, dret, sizeof(ret)));
    for (i = 0; i < N; i++) {
        bad += ret[i] != 7;     /* printf returns the arguments it took */
    }
    snprintf(what, sizeof(what), "printf runs and returns 7 (%s)", label);
    tc_check(bad == 0, what);
    cuMemFree(dret);
}

static size_t tc_dyn_calls;

static size_t tc_dyn(int block)
{
    tc_dyn_calls++;
    return (size_t)block * 40;  /* 40 bytes of dynamic shared per thread */
}

static void test_occupancy(CUmodule mod)
{
    CUfunction f;
    int nb = -1, gs = -1, bs = -1, nb2 = -1;
    size_t avail = 0;

    CK(cuModuleGetFunction(&f, mod, "calls_kernel"));
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 256, 0));
    tc_check(nb == 8, "occupancy: 8 blocks of 256 threads per SM");
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&nb, f, 1024, 0,
                                                            0));
    tc_check(nb == 2, "occupancy: 2 blocks of 1024 threads per SM");
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 128, 48 * 1024));
    tc_check(nb == 3, "occupancy: shared memory limits 48 KiB blocks to 3");
    tc_check(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, 0, 0) ==
             CUDA_ERROR_INVALID_VALUE, "occupancy: block size 0 refused");
    CK(cuOccupancyMaxPotentialBlockSize(&gs, &bs, f, NULL, 0, 0));
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb2, f, bs, 0));
    tc_check(bs == 1024 && gs == nb2 * 108,
             "max potential block size: 1024, grid 2 per SM");
    CK(cuOccupancyMaxPotentialBlockSize(&gs, &bs, f, NULL, 0, 200));
    /* 128 threads x 16 blocks fill an SM; 192 x 10 do not */
    tc_check(bs == 128, "max potential block size honours the limit");
    CK(cuOccupancyMaxPotentialBlockSizeWithFlags(&gs, &bs, f, tc_dyn, 0, 0,
                                                 0));
    CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb2, f, bs, tc_dyn(bs)));
    tc_check(tc_dyn_calls > 1 && bs > 0 && bs % 32 == 0 && nb2 > 0 &&
             gs == nb2 * 108,
             "max potential block size with a shared-memory callback");
    CK(cuOccupancyAvailableDynamicSMemPerBlock(&avail, f, 2, 256));
    tc_check(avail == 164 * 1024 / 2 - 1024,
             "available dynamic shared memory for 2 blocks");
    CK(cuOccupancyAvailableDynamicSMemPerBlock(&avail, f, 64, 64));
    tc_check(avail == 0, "no dynamic shared memory for 64 blocks");
}

int main(int argc, char **argv)
{
    const char *fatbin_path = argc > 1 ? argv[1] : VGC_CALLS_FATBIN;
    const char *ptx_path = argc > 2 ? argv[2] : VGC_CALLS_PTX_G;
    char *fatbin = tc_read(fatbin_path);
    char *ptx = tc_read(ptx_path);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod, gmod;

    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuCtxCreate(&ctx, NULL, 0, dev));
    CK(cuModuleLoadData(&mod, fatbin));
    CK(cuModuleLoadData(&gmod, ptx));

    test_calls(mod, "-O3");
    test_calls(gmod, "-G");
    test_printf(mod, "-O3");
    test_printf(gmod, "-G");
    test_occupancy(mod);

    CK(cuModuleUnload(mod));
    CK(cuModuleUnload(gmod));
    CK(cuCtxDestroy(ctx));
    free(fatbin);
    free(ptx);
    printf("%s\n", tc_fails ? "FAILED" : "PASSED");
    return tc_fails ? 1 : 0;
}
