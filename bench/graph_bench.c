/*
 * graph_bench.c - what a CUDA graph costs through the shim, against issuing
 * the same stream work directly, in one run.
 *
 * One step is N operations on a stream and one cuStreamSynchronize:
 *   direct  the operations issued one by one;
 *   graph   one cuGraphLaunch of a graph captured from the same operations
 *           (the shim sends the nodes' work as ordinary stream work).
 * Two kinds of operation: kernel launches (add_one on 256 words) and
 * 4-byte memsets (nothing for the device to do: the protocol's cost).
 * Steps of the two ways alternate, so a noisy machine hits both alike; the
 * median of each is printed with their ratio.  Results are checked.
 *
 * Usage: graph_bench [--quick]   (run through the shim: LD_LIBRARY_PATH and
 * VGC_SERVER as for any program)
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

#include "add_one_ptx.h"

#define ROUNDS 9
#define WORDS  256u

static CUfunction add_one;

static void check(CUresult res, const char *what)
{
    const char *name = NULL;

    if (res != CUDA_SUCCESS) {
        cuGetErrorName(res, &name);
        fprintf(stderr, "graph_bench: %s: %s\n", what, name ? name : "?");
        exit(1);
    }
}

/* @n operations of @kind (0: launches, 1: memsets) on @s. */
static void issue(int kind, unsigned n, CUdeviceptr d, CUstream s)
{
    unsigned words = WORDS;
    void *params[] = { &d, &words };

    for (unsigned i = 0; i < n; i++) {
        if (kind == 0) {
            check(cuLaunchKernel(add_one, 1, 1, 1, WORDS, 1, 1, 0, s, params, NULL), "launch");
        } else {
            check(cuMemsetD32Async(d + 4 * (i % WORDS), i, 1, s), "memset");
        }
    }
}

int main(int argc, char **argv)
{
    static const unsigned counts[] = { 16, 64, 256 };
    static const char *const kinds[] = { "kernel", "memset" };
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    CUcontext ctx;
    CUdevice dev;
    CUmodule mod;
    CUstream s;
    CUdeviceptr d;
    unsigned h[WORDS];

    check(cuInit(0), "cuInit");
    check(cuDeviceGet(&dev, 0), "cuDeviceGet");
    check(cuDevicePrimaryCtxRetain(&ctx, dev), "retain");
    check(cuCtxSetCurrent(ctx), "set current");
    check(cuModuleLoadData(&mod, add_one_ptx), "cuModuleLoadData");
    check(cuModuleGetFunction(&add_one, mod, "add_one"), "cuModuleGetFunction");
    check(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    check(cuMemAlloc(&d, WORDS * 4), "cuMemAlloc");
    printf("%-8s %6s %12s %12s %8s\n", "work", "ops", "direct us", "graph us", "ratio");
    for (int kind = 0; kind < 2; kind++) {
        for (unsigned c = 0; c < (quick ? 2u : 3u); c++) {
            unsigned n = counts[c];
            uint64_t td[ROUNDS], tg[ROUNDS], t0;
            CUgraph g;
            CUgraphExec ex;

            check(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "capture");
            issue(kind, n, d, s);
            check(cuStreamEndCapture(s, &g), "end capture");
            check(cuGraphInstantiate(&ex, g, 0), "instantiate");
            check(cuMemsetD32(d, 0, WORDS), "clear");
            for (int r = -1; r < ROUNDS; r++) {         /* r = -1: warm-up */
                t0 = bench_now_ns();
                issue(kind, n, d, s);
                check(cuStreamSynchronize(s), "sync");
                if (r >= 0) {
                    td[r] = bench_now_ns() - t0;
                }
                t0 = bench_now_ns();
                check(cuGraphLaunch(ex, s), "cuGraphLaunch");
                check(cuStreamSynchronize(s), "sync");
                if (r >= 0) {
                    tg[r] = bench_now_ns() - t0;
                }
            }
            if (kind == 0) {
                /* Each step added n to every word, twice per round. */
                check(cuMemcpyDtoH(h, d, sizeof(h)), "read back");
                for (unsigned i = 0; i < WORDS; i++) {
                    if (h[i] != 2u * (ROUNDS + 1) * n) {
                        fprintf(stderr, "graph_bench: word %u is %u, want %u\n", i, h[i],
                                2u * (ROUNDS + 1) * n);
                        return 1;
                    }
                }
            }
            qsort(td, ROUNDS, sizeof(td[0]), bench_cmp_u64);
            qsort(tg, ROUNDS, sizeof(tg[0]), bench_cmp_u64);
            printf("%-8s %6u %12.1f %12.1f %8.2f\n", kinds[kind], n, td[ROUNDS / 2] / 1e3,
                   tg[ROUNDS / 2] / 1e3, (double)tg[ROUNDS / 2] / (double)td[ROUNDS / 2]);
            check(cuGraphExecDestroy(ex), "exec destroy");
            check(cuGraphDestroy(g), "graph destroy");
        }
    }
    check(cuMemFree(d), "cuMemFree");
    check(cuStreamDestroy(s), "cuStreamDestroy");
    check(cuModuleUnload(mod), "cuModuleUnload");
    check(cuDevicePrimaryCtxRelease(dev), "release");
    return 0;
}
