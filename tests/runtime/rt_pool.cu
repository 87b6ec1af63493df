/*
 * rt_pool.cu - a tenant's memory limit as the CUDA runtime sees it: run by
 * tests/run.py (section pool) against a listener with memory=LIMIT, given
 * LIMIT in bytes as the argument.  What PyTorch asks (mem_get_info is
 * cudaMemGetInfo, get_device_properties().total_memory is totalGlobalMem)
 * says LIMIT, and cudaMalloc past it fails with cudaErrorMemoryAllocation.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>

#include "rt_check.h"

int main(int argc, char **argv)
{
    size_t limit = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
    size_t free0 = 0, total = 0, free1 = 0, dummy = 0;
    cudaDeviceProp prop;
    void *a = NULL, *b = NULL;

    rt_start();
    if (!limit) {
        printf("Bail out! usage: rt_pool LIMIT_BYTES\n");
        return 2;
    }
    RT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess, "cudaMemGetInfo");
    RT_EQ(total, limit, "total memory is the tenant's limit");
    RT_OK(free0 <= total, "free memory within it");
    RT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess, "cudaGetDeviceProperties");
    RT_EQ(prop.totalGlobalMem, limit, "totalGlobalMem is the limit too");

    RT_EQ(cudaMalloc(&a, limit / 4 * 3), cudaSuccess, "three quarters of the limit");
    RT_EQ(cudaMemGetInfo(&free1, &dummy), cudaSuccess, "cudaMemGetInfo again");
    RT_OK(free1 + limit / 4 * 3 <= free0, "free memory went down by as much");
    RT_EQ(cudaMalloc(&b, limit / 2), cudaErrorMemoryAllocation,
          "half the limit more: cudaErrorMemoryAllocation");
    RT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation, "the error, once");
    RT_EQ(cudaGetLastError(), cudaSuccess, "and not sticky");
    RT_EQ(cudaFree(a), cudaSuccess, "cudaFree");
    RT_EQ(cudaMalloc(&b, limit / 2), cudaSuccess, "after the free it fits");
    RT_EQ(cudaFree(b), cudaSuccess, "cudaFree");
    return rt_done();
}
