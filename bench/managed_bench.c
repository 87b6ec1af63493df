/*
 * managed_bench.c - what managed memory costs through the shim, against the
 * explicit copies a program would write instead, in one run.
 *
 * One round, for a buffer of SIZE bytes:
 *   managed   the host writes one byte per 4 KiB page of a managed buffer,
 *             cuMemsetD8Async changes its first 256 bytes on the device,
 *             cuCtxSynchronize, the host reads it back (the shim pushes the
 *             dirty blocks and pulls the buffer whole);
 *   explicit  the same host writes into ordinary memory, cuMemcpyHtoD of
 *             the buffer, the same memset, cuMemcpyDtoH of the buffer.
 * Rounds of the two kinds alternate, so a noisy machine hits both alike; the
 * median of each is printed with their ratio.  Results are checked.
 *
 * Usage: managed_bench [--quick]   (run through the shim: LD_LIBRARY_PATH
 * and VGC_SERVER as for any program; bench/run-managed.sh does it)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda.h>

#include "bench_clock.h"

#define ROUNDS 9

static void check(CUresult res, const char *what)
{
    const char *name = NULL;

    if (res != CUDA_SUCCESS) {
        cuGetErrorName(res, &name);
        fprintf(stderr, "managed_bench: %s: %s\n", what, name ? name : "?");
        exit(1);
    }
}

static void touch(uint8_t *p, size_t size, uint8_t v)
{
    for (size_t off = 0; off < size; off += 4096) {
        p[off] = v;
    }
}

static uint64_t managed_round(uint8_t *m, size_t size, uint8_t v)
{
    uint64_t t0 = bench_now_ns();

    touch(m, size, v);
    check(cuMemsetD8Async((CUdeviceptr)(uintptr_t)m, (uint8_t)(v + 1), 256, NULL), "memset");
    check(cuCtxSynchronize(), "cuCtxSynchronize");
    t0 = bench_now_ns() - t0;
    if (m[0] != (uint8_t)(v + 1) || m[4096] != v) {
        fprintf(stderr, "managed_bench: managed round read back wrong bytes\n");
        exit(1);
    }
    return t0;
}

static uint64_t explicit_round(uint8_t *h, CUdeviceptr d, size_t size, uint8_t v)
{
    uint64_t t0 = bench_now_ns();

    touch(h, size, v);
    check(cuMemcpyHtoD(d, h, size), "cuMemcpyHtoD");
    check(cuMemsetD8Async(d, (uint8_t)(v + 1), 256, NULL), "memset");
    check(cuMemcpyDtoH(h, d, size), "cuMemcpyDtoH");
    t0 = bench_now_ns() - t0;
    if (h[0] != (uint8_t)(v + 1)) {
        fprintf(stderr, "managed_bench: explicit round read back wrong bytes\n");
        exit(1);
    }
    return t0;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 64 << 10, 1 << 20, 16 << 20, 64 << 20 };
    size_t nsizes = argc > 1 && strcmp(argv[1], "--quick") == 0 ? 2 : 4;
    CUcontext ctx;
    CUdevice dev;

    check(cuInit(0), "cuInit");
    check(cuDeviceGet(&dev, 0), "cuDeviceGet");
    check(cuDevicePrimaryCtxRetain(&ctx, dev), "retain");
    check(cuCtxSetCurrent(ctx), "set current");
    printf("%-10s %14s %14s %8s\n", "size", "managed us", "explicit us", "ratio");
    for (size_t i = 0; i < nsizes; i++) {
        size_t size = sizes[i];
        uint64_t tm[ROUNDS], te[ROUNDS];
        CUdeviceptr m, d;
        uint8_t *h = malloc(size);

        if (!h) {
            return 1;
        }
        check(cuMemAllocManaged(&m, size, CU_MEM_ATTACH_GLOBAL), "cuMemAllocManaged");
        check(cuMemAlloc(&d, size), "cuMemAlloc");
        managed_round((uint8_t *)(uintptr_t)m, size, 1);         /* warm-up */
        explicit_round(h, d, size, 1);
        for (int r = 0; r < ROUNDS; r++) {
            tm[r] = managed_round((uint8_t *)(uintptr_t)m, size, (uint8_t)(2 * r + 3));
            te[r] = explicit_round(h, d, size, (uint8_t)(2 * r + 3));
        }
        qsort(tm, ROUNDS, sizeof(tm[0]), bench_cmp_u64);
        qsort(te, ROUNDS, sizeof(te[0]), bench_cmp_u64);
        printf("%-10zu %14.1f %14.1f %8.2f\n", size, tm[ROUNDS / 2] / 1e3,
               te[ROUNDS / 2] / 1e3, (double)tm[ROUNDS / 2] / (double)te[ROUNDS / 2]);
        check(cuMemFree(m), "cuMemFree managed");
        check(cuMemFree(d), "cuMemFree");
        free(h);
    }
    check(cuDevicePrimaryCtxRelease(dev), "release");
    return 0;
}
