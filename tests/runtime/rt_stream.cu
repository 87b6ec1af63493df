/*
 * rt_stream.cu - what runtime programs do besides plain copies and
 * launches: host functions and callbacks in streams, stream-ordered
 * allocation and memory pools, __device__ and __constant__ symbols, 3D
 * copies and memsets, the profiler calls, through the shim.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include "rt_check.h"

__device__ int table[16];
__constant__ float scale[2];

__global__ void combine(int *p)
{
    p[threadIdx.x] = p[threadIdx.x] * (int)scale[0] + table[threadIdx.x];
}

__global__ void bump(int *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        p[i] += 1;
    }
}

struct order {
    int *dev_view;              /* what the stream's earlier work wrote */
    int seen;
};

static int *pinned_result;

static void host_fn(void *u)
{
    struct order *o = (struct order *)u;
    o->seen = pinned_result[0];
}

static void old_callback(cudaStream_t s, cudaError_t status, void *u)
{
    (void)s;
    *(int *)u = status == cudaSuccess ? 1000 + pinned_result[1] : -1;
}

int main(void)
{
    cudaStream_t s;
    int h[16], out[16];
    float sc[2] = { 3.0f, 0.0f };

    rt_start();
    RT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess, "stream");

    /* Symbols. */
    for (int i = 0; i < 16; i++) {
        h[i] = 100 * i;
    }
    RT_EQ(cudaMemcpyToSymbol(table, h, sizeof(h)), cudaSuccess, "cudaMemcpyToSymbol(__device__)");
    RT_EQ(cudaMemcpyToSymbol(scale, sc, sizeof(sc)), cudaSuccess,
          "cudaMemcpyToSymbol(__constant__)");
    void *addr = NULL;
    RT_EQ(cudaGetSymbolAddress(&addr, table), cudaSuccess, "cudaGetSymbolAddress");
    RT_OK(addr != NULL, "a __device__ symbol has an address");

    /* Stream-ordered allocation, a kernel, a host function after it. */
    int *d = NULL;
    RT_EQ(cudaMallocAsync((void **)&d, sizeof(h), s), cudaSuccess, "cudaMallocAsync");
    for (int i = 0; i < 16; i++) {
        h[i] = i;
    }
    RT_EQ(cudaMemcpyAsync(d, h, sizeof(h), cudaMemcpyHostToDevice, s), cudaSuccess, "H2D async");
    combine<<<1, 16, 0, s>>>(d);
    RT_EQ(cudaGetLastError(), cudaSuccess, "combine launch");
    RT_EQ(cudaMallocHost((void **)&pinned_result, 2 * sizeof(int)), cudaSuccess, "cudaMallocHost");
    RT_EQ(cudaMemcpyAsync(pinned_result, d + 5, 2 * sizeof(int), cudaMemcpyDeviceToHost, s),
          cudaSuccess, "D2H async");
    struct order o = { d, -1 };
    int cb = 0;
    RT_EQ(cudaLaunchHostFunc(s, host_fn, &o), cudaSuccess, "cudaLaunchHostFunc");
    RT_EQ(cudaStreamAddCallback(s, old_callback, &cb, 0), cudaSuccess, "cudaStreamAddCallback");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "cudaStreamSynchronize");
    RT_EQ(o.seen, 5 * 3 + 500, "the host function ran after the kernel and the copy");
    RT_EQ(cb, 1000 + 6 * 3 + 600, "the callback ran, with cudaSuccess");
    RT_EQ(cudaMemcpy(out, d, sizeof(out), cudaMemcpyDeviceToHost), cudaSuccess, "D2H");
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        bad += out[i] != 3 * i + 100 * i;
    }
    RT_EQ(bad, 0, "kernel read __constant__ and __device__ symbols");
    RT_EQ(cudaMemcpyFromSymbol(out, table, sizeof(out)), cudaSuccess, "cudaMemcpyFromSymbol");
    RT_EQ(out[7], 700, "symbol read back");
    RT_EQ(cudaFreeAsync(d, s), cudaSuccess, "cudaFreeAsync");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "sync after cudaFreeAsync");
    RT_EQ(cudaLaunchHostFunc(s, NULL, NULL), cudaErrorInvalidValue, "a NULL host function");
    cudaGetLastError();

    /* 3D: a 40 x 7 x 5 box of ints, pitched on the device, with offsets. */
    const int W = 40, H = 7, D = 5;
    cudaExtent ext = make_cudaExtent(W * sizeof(int), H, D);
    cudaPitchedPtr dp;
    RT_EQ(cudaMalloc3D(&dp, ext), cudaSuccess, "cudaMalloc3D");
    RT_EQ(cudaMemset3D(dp, 0, ext), cudaSuccess, "cudaMemset3D");
    static int box[5][7][40], back[5][7][40];
    for (int z = 0; z < D; z++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                box[z][y][x] = z * 10000 + y * 100 + x;
    cudaMemcpy3DParms up = {};
    up.srcPtr = make_cudaPitchedPtr(box, W * sizeof(int), W, H);
    up.dstPtr = dp;
    up.extent = ext;
    up.kind = cudaMemcpyHostToDevice;
    RT_EQ(cudaMemcpy3D(&up), cudaSuccess, "cudaMemcpy3D host to device");
    /* Bump 10 ints of row 1 of slice 2 on the device, then bring back a
     * sub-box that holds most of them. */
    bump<<<1, 64>>>((int *)((char *)dp.ptr + 2 * dp.pitch * H + dp.pitch), 10);
    RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "bump");
    memset(back, 0xff, sizeof(back));
    cudaMemcpy3DParms down = {};
    down.srcPtr = dp;
    down.srcPos = make_cudaPos(sizeof(int), 1, 1);
    down.dstPtr = make_cudaPitchedPtr(back, W * sizeof(int), W, H);
    down.dstPos = make_cudaPos(sizeof(int), 1, 1);
    down.extent = make_cudaExtent((W - 2) * sizeof(int), H - 2, D - 2);
    down.kind = cudaMemcpyDeviceToHost;
    RT_EQ(cudaMemcpy3DAsync(&down, s), cudaSuccess, "cudaMemcpy3DAsync device to host");
    RT_EQ(cudaStreamSynchronize(s), cudaSuccess, "sync 3D");
    bad = 0;
    for (int z = 0; z < D; z++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                bool inside = z >= 1 && z < D - 1 && y >= 1 && y < H - 1 && x >= 1 && x < W - 1;
                int want = !inside ? -1 : box[z][y][x] + (z == 2 && y == 1 && x < 10);
                bad += back[z][y][x] != want;
            }
    RT_EQ(bad, 0, "3D sub-box with offsets, outside untouched");
    RT_EQ(cudaFree(dp.ptr), cudaSuccess, "cudaFree 3D");

    /* Memory pools: the default pool's account and attributes, a pool of
     * our own made the device's current one. */
    cudaMemPool_t dflt = NULL, mine = NULL, cur = NULL;
    unsigned long long v = 0, thr = 64 << 20;   /* the runtime's cuuint64_t */
    void *a = NULL, *b = NULL, *c = NULL;
    RT_EQ(cudaDeviceGetDefaultMemPool(&dflt, 0), cudaSuccess, "cudaDeviceGetDefaultMemPool");
    RT_EQ(cudaMemPoolSetAttribute(dflt, cudaMemPoolAttrReleaseThreshold, &thr), cudaSuccess,
          "set the release threshold");
    RT_OK(cudaMemPoolGetAttribute(dflt, cudaMemPoolAttrReleaseThreshold, &v) == cudaSuccess &&
          v == thr, "read it back");
    RT_EQ(cudaMallocFromPoolAsync(&a, 1 << 20, dflt, s), cudaSuccess, "cudaMallocFromPoolAsync");
    RT_EQ(cudaMallocAsync(&b, 2 << 20, s), cudaSuccess, "cudaMallocAsync (current pool)");
    RT_OK(cudaMemPoolGetAttribute(dflt, cudaMemPoolAttrUsedMemCurrent, &v) == cudaSuccess &&
          v == (3 << 20), "the default pool accounts 3 MiB in use");
    RT_EQ(cudaMemsetAsync(a, 7, 1 << 20, s), cudaSuccess, "pool memory is usable");
    RT_EQ(cudaFreeAsync(a, s), cudaSuccess, "cudaFreeAsync from the pool");
    RT_EQ(cudaFree(b), cudaSuccess, "cudaFree of cudaMallocAsync memory");
    RT_OK(cudaMemPoolGetAttribute(dflt, cudaMemPoolAttrUsedMemCurrent, &v) == cudaSuccess &&
          v == 0, "nothing in use after the frees");
    RT_OK(cudaMemPoolGetAttribute(dflt, cudaMemPoolAttrUsedMemHigh, &v) == cudaSuccess &&
          v == (3 << 20), "high-water mark 3 MiB");
    v = 0;
    RT_EQ(cudaMemPoolSetAttribute(dflt, cudaMemPoolAttrUsedMemHigh, &v), cudaSuccess,
          "reset the high-water mark");
    RT_EQ(cudaMemPoolTrimTo(dflt, 0), cudaSuccess, "cudaMemPoolTrimTo");
    cudaMemPoolProps props = {};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    RT_EQ(cudaMemPoolCreate(&mine, &props), cudaSuccess, "cudaMemPoolCreate");
    RT_EQ(cudaDeviceSetMemPool(0, mine), cudaSuccess, "cudaDeviceSetMemPool");
    RT_OK(cudaDeviceGetMemPool(&cur, 0) == cudaSuccess && cur == mine, "it is current");
    RT_EQ(cudaMallocAsync(&c, 4096, s), cudaSuccess, "cudaMallocAsync from it");
    RT_OK(cudaMemPoolGetAttribute(mine, cudaMemPoolAttrUsedMemCurrent, &v) == cudaSuccess &&
          v == 4096, "our pool accounts it");
    RT_EQ(cudaFreeAsync(c, s), cudaSuccess, "cudaFreeAsync");
    RT_EQ(cudaDeviceSetMemPool(0, dflt), cudaSuccess, "back to the default pool");
    RT_EQ(cudaMemPoolDestroy(mine), cudaSuccess, "cudaMemPoolDestroy");
    RT_EQ(cudaMemPoolGetAttribute(mine, cudaMemPoolAttrUsedMemCurrent, &v), cudaErrorInvalidValue,
          "a destroyed pool is refused");
    cudaGetLastError();

    RT_EQ(cudaProfilerStart(), cudaSuccess, "cudaProfilerStart");
    RT_EQ(cudaProfilerStop(), cudaSuccess, "cudaProfilerStop");
    RT_EQ(cudaFreeHost(pinned_result), cudaSuccess, "cudaFreeHost");
    RT_EQ(cudaStreamDestroy(s), cudaSuccess, "stream destroy");
    return rt_done();
}
