/*
 * demo.c - an ordinary CUDA driver-API program: what `make demo` runs
 * through the shim.  It knows nothing of virtio-gpu-compute.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda.h>

#define CK(call) do { \
    CUresult r_ = (call); \
    if (r_ != CUDA_SUCCESS) { \
        const char *n_ = "?"; \
        cuGetErrorName(r_, &n_); \
        fprintf(stderr, "%s failed: %s\n", #call, n_); \
        return 1; \
    } \
} while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* y = a*x + y over float arrays, as PTX, for executors that can run it. */
static const char saxpy_ptx[] =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".visible .entry saxpy(.param .u32 n, .param .f32 a, .param .u64 x, .param .u64 y)\n{\n"
    "  .reg .pred %p; .reg .b32 %r<6>; .reg .f32 %f<4>; .reg .b64 %rd<8>;\n"
    "  ld.param.u32 %r1, [n]; ld.param.f32 %f1, [a];\n"
    "  ld.param.u64 %rd1, [x]; ld.param.u64 %rd2, [y];\n"
    "  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r5, %r2, %r3, %r4;\n"
    "  setp.ge.u32 %p, %r5, %r1; @%p bra DONE;\n"
    "  cvta.to.global.u64 %rd3, %rd1; cvta.to.global.u64 %rd4, %rd2;\n"
    "  mul.wide.u32 %rd5, %r5, 4; add.s64 %rd6, %rd3, %rd5; add.s64 %rd7, %rd4, %rd5;\n"
    "  ld.global.f32 %f2, [%rd6]; ld.global.f32 %f3, [%rd7];\n"
    "  fma.rn.f32 %f3, %f1, %f2, %f3; st.global.f32 [%rd7], %f3;\n"
    "DONE:\n  ret;\n}\n";

int main(int argc, char **argv)
{
    /* 16 Mi floats (64 MiB) a vector unless told otherwise */
    const size_t n = (argc > 1 ? strtoull(argv[1], NULL, 0) : 16) << 20;
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr dx, dy;
    CUmodule mod;
    CUfunction fn;
    CUevent e0, e1;
    char name[256];
    size_t free_b, total_b;
    int count, major, minor, sms;
    float *x, *y, ms, a = 2.0f;
    unsigned nn;
    double t;
    CUresult lr;

    CK(cuInit(0));
    CK(cuDeviceGetCount(&count));
    printf("%d CUDA device(s)\n", count);
    for (int i = 0; i < count; i++) {
        CK(cuDeviceGet(&dev, i));
        CK(cuDeviceGetName(name, sizeof(name), dev));
        CK(cuDeviceTotalMem(&total_b, dev));
        CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
        CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
        CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
        printf("  device %d: %s, sm_%d%d, %d SMs, %.1f GiB\n", i, name, major, minor, sms,
               total_b / 1073741824.0);
    }
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));

    x = malloc(n * sizeof(float));
    y = malloc(n * sizeof(float));
    if (!x || !y) {
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i % 1000);
        y[i] = 1.0f;
    }
    CK(cuMemAlloc(&dx, n * sizeof(float)));
    CK(cuMemAlloc(&dy, n * sizeof(float)));
    CK(cuMemGetInfo(&free_b, &total_b));
    printf("allocated 2 x %zu MiB; device memory free %.1f of %.1f GiB\n",
           n * sizeof(float) >> 20, free_b / 1073741824.0, total_b / 1073741824.0);

    CK(cuEventCreate(&e0, 0));
    CK(cuEventCreate(&e1, 0));
    t = now();
    CK(cuEventRecord(e0, 0));
    CK(cuMemcpyHtoD(dx, x, n * sizeof(float)));
    CK(cuMemcpyHtoD(dy, y, n * sizeof(float)));
    CK(cuEventRecord(e1, 0));
    CK(cuEventSynchronize(e1));
    CK(cuEventElapsedTime(&ms, e0, e1));
    printf("host to device: %zu MiB in %.0f ms (%.2f GB/s wall)\n",
           2 * n * sizeof(float) >> 20, ms, 2.0 * n * sizeof(float) / (now() - t) / 1e9);

    CK(cuModuleLoadData(&mod, saxpy_ptx));
    CK(cuModuleGetFunction(&fn, mod, "saxpy"));
    nn = (unsigned)n;
    {
        void *args[] = { &nn, &a, &dx, &dy };
        t = now();
        lr = cuLaunchKernel(fn, (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0, NULL, args, NULL);
        if (lr == CUDA_SUCCESS) {
            lr = cuCtxSynchronize();
        }
        t = now() - t;
    }
    if (lr == CUDA_SUCCESS) {
        size_t bad = 0;
        CK(cuMemcpyDtoH(y, dy, n * sizeof(float)));
        for (size_t i = 0; i < n; i++) {
            bad += y[i] != 2.0f * (float)(i % 1000) + 1.0f;
        }
        printf("saxpy kernel over %zu Mi elements: %s (%zu wrong), %.2f s\n", n >> 20,
               bad ? "WRONG" : "correct", bad, t);
        if (bad) {
            return 1;
        }
    } else {
        const char *nm = "?";
        cuGetErrorName(lr, &nm);
        printf("saxpy kernel: not run by this executor (%s)\n", nm);
        /* Still prove the data path: the copy back must be byte-exact. */
        CK(cuMemcpyDtoH(y, dx, n * sizeof(float)));
        if (memcmp(x, y, n * sizeof(float))) {
            printf("device to host: WRONG DATA\n");
            return 1;
        }
        printf("device to host: %zu MiB back, byte-exact\n", n * sizeof(float) >> 20);
    }
    CK(cuMemsetD32(dy, 0x3f800000u, n));
    CK(cuMemcpyDtoH(y, dy, sizeof(float) * 4));
    printf("memset: y[0..3] = %g %g %g %g\n", y[0], y[1], y[2], y[3]);
    CK(cuModuleUnload(mod));
    CK(cuMemFree(dx));
    CK(cuMemFree(dy));
    CK(cuDevicePrimaryCtxRelease(dev));
    free(x);
    free(y);
    printf("demo finished\n");
    return 0;
}
