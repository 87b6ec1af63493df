/*
 * peer_bench.c - copies between devices of one driver made of several vgcds
 * (vgcd --executor remote:A+B): between two devices of one upstream, which
 * that upstream copies itself, against between devices of two upstreams,
 * which the aggregating worker stages through its bounce buffer.  Both
 * kinds are timed interleaved in one run, so a noisy machine hits them
 * alike, and every size is checked byte-exact once per kind.
 *
 * Which devices share an upstream is read from their PCI domains (the
 * aggregate moves upstream k's by k * 0x1000).  Needs a pair of each kind.
 *
 * Usage: VGC_SERVER=... LD_LIBRARY_PATH=build/guest-driver/libcuda \
 *        peer_bench [--quick]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"

#define MAX_DEV 16
#define BATCHES 7

struct pair {
    const char *what;
    int a, b;
    CUcontext ca, cb;
    CUdeviceptr pa, pb;
};

static void die(const char *call, CUresult res)
{
    const char *name = NULL;

    cuGetErrorName(res, &name);
    fprintf(stderr, "peer_bench: %s: %s\n", call, name ? name : "?");
    exit(1);
}

#define CK(call) do { CUresult r_ = (call); if (r_ != CUDA_SUCCESS) die(#call, r_); } while (0)

static void pair_open(struct pair *p, size_t size)
{
    CUdevice da, db;

    CK(cuDeviceGet(&da, p->a));
    CK(cuDeviceGet(&db, p->b));
    CK(cuDevicePrimaryCtxRetain(&p->ca, da));
    CK(cuDevicePrimaryCtxRetain(&p->cb, db));
    CK(cuCtxSetCurrent(p->ca));
    CK(cuMemAlloc(&p->pa, size));
    CK(cuCtxSetCurrent(p->cb));
    CK(cuMemAlloc(&p->pb, size));
}

/* One copy of @n bytes from a to b: nanoseconds. */
static uint64_t pair_copy(struct pair *p, size_t n)
{
    uint64_t t = bench_now_ns();

    CK(cuMemcpyPeer(p->pb, p->cb, p->pa, p->ca, n));
    return bench_now_ns() - t;
}

static void pair_verify(struct pair *p, size_t n, unsigned char *in, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        in[i] = (unsigned char)(i * 13 + n);
    }
    CK(cuCtxSetCurrent(p->ca));
    CK(cuMemcpyHtoD(p->pa, in, n));
    pair_copy(p, n);
    CK(cuCtxSetCurrent(p->cb));
    memset(out, 0, n);
    CK(cuMemcpyDtoH(out, p->pb, n));
    if (memcmp(in, out, n)) {
        fprintf(stderr, "peer_bench: %s: %zu bytes did not arrive whole\n", p->what, n);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 64 << 10, 1 << 20, 16 << 20, 64 << 20 };
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int ndev = 0, upstream[MAX_DEV];
    struct pair same = { .what = "same upstream", .a = -1 },
                across = { .what = "across upstreams", .a = -1 };
    size_t largest = quick ? 1 << 20 : sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
    unsigned char *in, *out;

    CK(cuInit(0));
    CK(cuDeviceGetCount(&ndev));
    ndev = ndev > MAX_DEV ? MAX_DEV : ndev;
    for (int d = 0; d < ndev; d++) {
        CK(cuDeviceGetAttribute(&upstream[d], CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d));
        upstream[d] /= 0x1000;
    }
    for (int a = 0; a < ndev; a++) {
        for (int b = 0; b < ndev; b++) {
            struct pair *p = upstream[a] == upstream[b] ? &same : &across;
            if (a != b && p->a < 0) {
                p->a = a;
                p->b = b;
            }
        }
    }
    if (same.a < 0 || across.a < 0) {
        fprintf(stderr, "peer_bench: needs two devices of one upstream and one of another "
                "(vgcd --executor remote:A+B, A with two devices)\n");
        return 2;
    }
    in = malloc(largest);
    out = malloc(largest);
    if (!in || !out) {
        return 1;
    }
    pair_open(&same, largest);
    pair_open(&across, largest);
    printf("peer_bench: same upstream %d -> %d, across upstreams %d -> %d\n",
           same.a, same.b, across.a, across.b);
    printf("%10s %14s %14s %12s\n", "bytes", "same MB/s", "across MB/s", "time across/same");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && sizes[i] <= largest; i++) {
        size_t n = sizes[i];
        uint64_t ts[BATCHES], ta[BATCHES];
        int reps = n >= (16 << 20) ? 2 : 16;

        pair_verify(&same, n, in, out);
        pair_verify(&across, n, in, out);
        for (int b = 0; b < BATCHES; b++) {
            ts[b] = ta[b] = 0;
            for (int r = 0; r < reps; r++) {
                ts[b] += pair_copy(&same, n);
                ta[b] += pair_copy(&across, n);
            }
        }
        qsort(ts, BATCHES, sizeof(ts[0]), bench_cmp_u64);
        qsort(ta, BATCHES, sizeof(ta[0]), bench_cmp_u64);
        printf("%10zu %14.0f %14.0f %12.2f\n", n,
               (double)n * reps / ((double)ts[BATCHES / 2] / 1e3),
               (double)n * reps / ((double)ta[BATCHES / 2] / 1e3),
               (double)ta[BATCHES / 2] / (double)ts[BATCHES / 2]);
    }
    free(in);
    free(out);
    return 0;
}
