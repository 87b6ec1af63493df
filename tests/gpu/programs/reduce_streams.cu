// reduce_streams.cu - idioms of real programs the shim has to carry:
// __constant__ memory set with cudaMemcpyToSymbol, a __device__ global read
// back with cudaMemcpyFromSymbol, dynamic shared memory, warp shuffles,
// atomics, four streams ordered by events, cudaMemsetAsync, and
// cudaDeviceSynchronize.  Exit 0 and "PASS" when every sum is right.
// SPDX-License-Identifier: GPL-2.0-or-later
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
    return 1; } } while (0)

__constant__ int scale[4];
__device__ unsigned long long launches;

__global__ void reduce(const int *in, unsigned long long *out, int n, int which)
{
    extern __shared__ unsigned long long part[];
    unsigned long long v = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        v += (unsigned long long)in[i] * scale[which];
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0)
        part[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long s = 0;
        for (int w = 0; w < blockDim.x / 32; w++)
            s += part[w];
        atomicAdd(out, s);
        if (blockIdx.x == 0)
            atomicAdd(&launches, 1ull);
    }
}

int main()
{
    const int n = 1 << 22, ns = 4;
    int h_scale[ns] = {1, 2, 3, 5};
    int *h, *d[ns];
    unsigned long long *sums, got[ns], want = 0, nl = 0;
    cudaStream_t s[ns];
    cudaEvent_t ready;

    CHECK(cudaMemcpyToSymbol(scale, h_scale, sizeof h_scale));
    CHECK(cudaMemcpyToSymbol(launches, &nl, sizeof nl));
    h = (int *)malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
        h[i] = (i * 2654435761u) % 1000;
        want += h[i];
    }
    CHECK(cudaMalloc(&sums, ns * sizeof(*sums)));
    CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    CHECK(cudaStreamCreate(&s[0]));
    CHECK(cudaMemsetAsync(sums, 0, ns * sizeof(*sums), s[0]));
    CHECK(cudaEventRecord(ready, s[0]));
    for (int k = 0; k < ns; k++) {
        if (k)
            CHECK(cudaStreamCreateWithFlags(&s[k], cudaStreamNonBlocking));
        CHECK(cudaStreamWaitEvent(s[k], ready, 0));
        CHECK(cudaMalloc(&d[k], n * sizeof(int)));
        CHECK(cudaMemcpyAsync(d[k], h, n * sizeof(int), cudaMemcpyHostToDevice, s[k]));
        reduce<<<264, 256, 256 / 32 * sizeof(unsigned long long), s[k]>>>(d[k], sums + k, n, k);
        CHECK(cudaGetLastError());
    }
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(got, sums, sizeof got, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpyFromSymbol(&nl, launches, sizeof nl));
    int bad = 0;
    for (int k = 0; k < ns; k++) {
        if (got[k] != want * h_scale[k]) {
            fprintf(stderr, "FAIL: stream %d: sum %llu, want %llu\n", k, got[k], want * h_scale[k]);
            bad = 1;
        }
        CHECK(cudaFree(d[k]));
        CHECK(cudaStreamDestroy(s[k]));
    }
    if (nl != (unsigned long long)ns) {
        fprintf(stderr, "FAIL: __device__ counter %llu, want %d\n", nl, ns);
        bad = 1;
    }
    CHECK(cudaFree(sums));
    free(h);
    if (bad)
        return 1;
    printf("PASS reduce_streams (%d streams x %d ints)\n", ns, n);
    return 0;
}
