/*
 * rt_cudnn.c - cuDNN through the shim: a handle's life cycle.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda_runtime.h>
#include <cudnn.h>

#include "rt_check.h"

int main(void)
{
    cudnnHandle_t h = NULL;
    cudaStream_t s = NULL, got = NULL;
    size_t version, cudart;

    rt_start();
    version = cudnnGetVersion();
    cudart = cudnnGetCudartVersion();
    printf("# cuDNN version %zu, built for cudart %zu\n", version, cudart);
    RT_OK(version >= 90000, "cudnnGetVersion is 9.x or later");
    RT_EQ(cudnnCreate(&h), CUDNN_STATUS_SUCCESS, "cudnnCreate");
    RT_EQ(cudaStreamCreate(&s), cudaSuccess, "cudaStreamCreate");
    RT_EQ(cudnnSetStream(h, s), CUDNN_STATUS_SUCCESS, "cudnnSetStream");
    RT_EQ(cudnnGetStream(h, &got), CUDNN_STATUS_SUCCESS, "cudnnGetStream");
    RT_OK(got == s, "the stream reads back");
    RT_EQ(cudnnDestroy(h), CUDNN_STATUS_SUCCESS, "cudnnDestroy");
    RT_EQ(cudaStreamDestroy(s), cudaSuccess, "cudaStreamDestroy");
    return rt_done();
}
