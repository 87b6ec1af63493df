/*
 * rt_managed.cu - unified memory the way CUDA samples use it:
 * cudaMallocManaged written and read by host code around kernels, and
 * mapped pinned memory (cudaHostAlloc(cudaHostAllocMapped) +
 * cudaHostGetDevicePointer) that a kernel writes directly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "rt_check.h"

__global__ void saxpy(int n, float a, const float *x, float *y)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        y[i] = a * x[i] + y[i];
    }
}

__global__ void count_odd(int n, const int *v, int *count)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && (v[i] & 1)) {
        atomicAdd(count, 1);
    }
}

int main(void)
{
    const int n = 1 << 18;
    float *x = NULL, *y = NULL;
    int *v = NULL, *count = NULL, *dcount = NULL;
    int managed = -1, concurrent = -1;

    rt_start();
    RT_EQ(cudaDeviceGetAttribute(&managed, cudaDevAttrManagedMemory, 0), cudaSuccess,
          "cudaDevAttrManagedMemory");
    RT_EQ(managed, 1, "the device has managed memory");
    RT_EQ(cudaDeviceGetAttribute(&concurrent, cudaDevAttrConcurrentManagedAccess, 0),
          cudaSuccess, "cudaDevAttrConcurrentManagedAccess");
    RT_EQ(concurrent, 0, "without concurrent access: host waits for the device");

    RT_EQ(cudaMallocManaged(&x, n * sizeof(float)), cudaSuccess, "cudaMallocManaged x");
    RT_EQ(cudaMallocManaged(&y, n * sizeof(float)), cudaSuccess, "cudaMallocManaged y");
    if (!x || !y) {
        return rt_done();
    }
    for (int i = 0; i < n; i++) {
        x[i] = (float)(i % 1000);
        y[i] = 1.0f;
    }
    saxpy<<<256, 256>>>(n, 2.0f, x, y);
    RT_EQ(cudaGetLastError(), cudaSuccess, "saxpy launch");
    RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "cudaDeviceSynchronize");
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += y[i] != 2.0f * (float)(i % 1000) + 1.0f;
    }
    RT_EQ(bad, 0, "saxpy on managed memory, checked by host code");

    /* The host changes a few values between launches. */
    y[0] = 100.0f;
    y[n - 1] = -5.0f;
    saxpy<<<256, 256>>>(n, 1.0f, x, y);
    RT_EQ(cudaDeviceSynchronize(), cudaSuccess, "second cudaDeviceSynchronize");
    RT_OK(y[0] == 100.0f && y[n - 1] == -5.0f + (float)((n - 1) % 1000) &&
          y[1] == 3.0f * 1.0f + 1.0f, "host stores between launches reach the kernel");

    cudaPointerAttributes at;
    RT_EQ(cudaPointerGetAttributes(&at, y), cudaSuccess, "cudaPointerGetAttributes(managed)");
    RT_EQ(at.type, cudaMemoryTypeManaged, "managed memory is cudaMemoryTypeManaged");
    RT_EQ(cudaFree(x), cudaSuccess, "cudaFree x");
    RT_EQ(cudaFree(y), cudaSuccess, "cudaFree y");

    /* Zero-copy: a kernel counts into mapped pinned memory. */
    RT_EQ(cudaMallocManaged(&v, n * sizeof(int)), cudaSuccess, "cudaMallocManaged v");
    RT_EQ(cudaHostAlloc(&count, sizeof(int), cudaHostAllocMapped), cudaSuccess,
          "cudaHostAlloc mapped");
    if (v && count) {
        int want = 0;
        for (int i = 0; i < n; i++) {
            v[i] = i * 7 + (i >> 3);
            want += v[i] & 1;
        }
        *count = 0;
        RT_EQ(cudaHostGetDevicePointer(&dcount, count, 0), cudaSuccess,
              "cudaHostGetDevicePointer");
        count_odd<<<(n + 255) / 256, 256>>>(n, v, dcount);
        RT_EQ(cudaStreamSynchronize(0), cudaSuccess, "cudaStreamSynchronize");
        RT_EQ(*count, want, "atomics into mapped host memory");
    }
    RT_EQ(cudaFreeHost(count), cudaSuccess, "cudaFreeHost");
    RT_EQ(cudaFree(v), cudaSuccess, "cudaFree v");
    return rt_done();
}
