/*
 * ptx_bench.c - interpreted thread-instructions per second of the cpu
 * executor's PTX interpreter, on the tiled matrix multiply and the
 * shared-memory + shuffle reduction of tests/kernels/kernels.cu.
 *
 * Usage: ptx_bench PATH/kernels.ptx   (built by meson in tests/kernels)
 * VGC_CPU_THREADS sets the worker threads (default: online CPUs).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor.h"
#include "cpu_internal.h"

static struct vgc_executor *ex;
#define OPS (&ex->ops)

static double pb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *pb_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void pb_run(CUmodule mod, const char *name, const char *label,
                   unsigned gx, unsigned gy, unsigned bx, unsigned by,
                   unsigned shmem, void **args)
{
    CUfunction f;
    double t0, t1;
    CUresult rc;

    if (OPS->cuModuleGetFunction(&f, mod, name) != CUDA_SUCCESS) {
        printf("%s: no kernel %s\n", label, name);
        return;
    }
    t0 = pb_now();
    rc = OPS->cuLaunchKernel(f, gx, gy, 1, bx, by, 1, shmem, NULL, args,
                             NULL);
    t1 = pb_now();
    if (rc != CUDA_SUCCESS) {
        printf("%s: launch failed: %d %s\n", label, rc,
               cpu_launch_last_error());
        return;
    }
    printf("%-28s %12llu thread-insns %8.3f s  %8.1f M thread-insns/s\n",
           label, (unsigned long long)cpu_launch_last_insns(), t1 - t0,
           (double)cpu_launch_last_insns() / (t1 - t0) / 1e6);
}

int main(int argc, char **argv)
{
    struct vgc_executor_config cfg = { .ndevices = 1,
                                       .device_memory = 2ULL << 30 };
    char *err = NULL, *ptx;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUdeviceptr a, b, c, in, out;
    int n = 256, rn = 1 << 22;
    float *h;
    int i;

    if (argc < 2 || !(ptx = pb_read(argv[1]))) {
        fprintf(stderr, "usage: ptx_bench PATH/kernels.ptx\n");
        return 2;
    }
    ex = vgc_cpu_executor_create(&cfg, &err);
    if (!ex) {
        fprintf(stderr, "cpu executor: %s\n", err ? err : "?");
        return 1;
    }
    OPS->cuInit(0);
    OPS->cuDeviceGet(&dev, 0);
    OPS->cuCtxCreate_v4(&ctx, NULL, 0, dev);
    if (OPS->cuModuleLoadData(&mod, ptx) != CUDA_SUCCESS) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    h = malloc((size_t)rn * sizeof(float));
    for (i = 0; i < rn; i++) {
        h[i] = (float)(i % 5);
    }
    OPS->cuMemAlloc_v2(&a, (size_t)n * n * 4);
    OPS->cuMemAlloc_v2(&b, (size_t)n * n * 4);
    OPS->cuMemAlloc_v2(&c, (size_t)n * n * 4);
    OPS->cuMemAlloc_v2(&in, (size_t)rn * 4);
    OPS->cuMemAlloc_v2(&out, 4);
    OPS->cuMemcpyHtoD_v2(a, h, (size_t)n * n * 4);
    OPS->cuMemcpyHtoD_v2(b, h, (size_t)n * n * 4);
    OPS->cuMemcpyHtoD_v2(in, h, (size_t)rn * 4);
    printf("threads: %s\n", getenv("VGC_CPU_THREADS") ?
           getenv("VGC_CPU_THREADS") : "default (online CPUs)");
    {
        void *args[] = { &a, &b, &c, &n, &n, &n };

        pb_run(mod, "matmul", "matmul 256x256x256", n / 16, n / 16, 16, 16,
               0, args);
    }
    {
        void *args[] = { &in, &out, &rn };

        pb_run(mod, "reduce_sum", "reduce_sum 4M floats", 256, 1, 256, 1,
               256 * 4, args);
    }
    free(h);
    free(ptx);
    ex->destroy();
    return 0;
}
