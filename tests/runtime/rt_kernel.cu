/*
 * rt_kernel.cu - module registration as cudart does it (cuLibraryLoadData
 * of the fatbin wrapper, cuLibraryGetKernel, a CUkernel passed to
 * cuLaunchKernel), with kernel arguments of several sizes and alignments.
 *
 * An executor that cannot run kernels yet refuses the launch with
 * cudaErrorNotSupported; whenever a launch succeeds its result is checked.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "rt_check.h"

struct odd {
    char c;
    double d;
    short s;
};

__global__ void axpy(int n, float a, const float *x, float *y, char tag, struct odd o,
                     long long big)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i] + (float)tag + (float)o.d + (float)o.s + (float)o.c +
               (float)(big >> 40);
    }
}

__global__ void noargs(void)
{
}

int main(void)
{
    const int n = 1000;
    float hx[n], hy[n], out[n];
    float *x = NULL, *y = NULL;
    struct odd o = { 1, 2.0, 3 };
    long long big = 4LL << 40;
    cudaError_t e;
    int launched = 0;

    rt_start();
    for (int i = 0; i < n; i++) {
        hx[i] = (float)i;
        hy[i] = 0.5f * (float)i;
    }
    RT_EQ(cudaMalloc(&x, sizeof(hx)), cudaSuccess, "cudaMalloc x");
    RT_EQ(cudaMalloc(&y, sizeof(hy)), cudaSuccess, "cudaMalloc y");
    RT_EQ(cudaMemcpy(x, hx, sizeof(hx), cudaMemcpyHostToDevice), cudaSuccess, "copy x");
    RT_EQ(cudaMemcpy(y, hy, sizeof(hy), cudaMemcpyHostToDevice), cudaSuccess, "copy y");

    struct cudaFuncAttributes fa;
    RT_EQ(cudaFuncGetAttributes(&fa, axpy), cudaSuccess,
          "cudaFuncGetAttributes (the module is registered and loaded lazily)");

    axpy<<<(n + 127) / 128, 128>>>(n, 2.0f, x, y, 5, o, big);
    e = cudaGetLastError();
    if (e == cudaSuccess) {
        e = cudaDeviceSynchronize();
    }
    if (e == cudaSuccess) {
        bool ok = true;
        launched = 1;
        RT_EQ(cudaMemcpy(out, y, sizeof(out), cudaMemcpyDeviceToHost), cudaSuccess, "copy back");
        for (int i = 0; i < n; i++) {
            ok &= out[i] == 2.0f * hx[i] + hy[i] + 5.0f + 2.0f + 3.0f + 1.0f + 4.0f;
        }
        RT_OK(ok, "axpy result (arguments packed by offset and size)");
    } else {
        RT_EQ(e, cudaErrorNotSupported, "launch refused as not supported (no kernels here)");
        cudaGetLastError();
    }
    noargs<<<1, 1>>>();
    e = cudaGetLastError();
    if (e == cudaSuccess) {
        e = cudaDeviceSynchronize();
    }
    RT_OK(e == cudaSuccess || (!launched && e == cudaErrorNotSupported),
          "kernel without arguments");
    cudaGetLastError();
    printf("# kernels %s\n", launched ? "ran" : "refused by this executor");
    RT_EQ(cudaFree(x), cudaSuccess, "cudaFree x");
    RT_EQ(cudaFree(y), cudaSuccess, "cudaFree y");
    return rt_done();
}
