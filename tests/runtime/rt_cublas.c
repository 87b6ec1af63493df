/*
 * rt_cublas.c - cuBLAS through the shim: a handle's life cycle, and a GEMM
 * that reaches a kernel launch.
 *
 * cuBLAS carries its own copy of the runtime, so this is a second,
 * independent runtime start-up (export tables, integrity check, lazy
 * module loading) in the same process as libcudart's.  On an executor
 * that cannot run kernels yet the GEMM's launch is refused with
 * cudaErrorNotSupported; when the launch runs, the result is checked.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>

#include "rt_check.h"

#define N 64

int main(void)
{
    cublasHandle_t h = NULL;
    cudaStream_t s = NULL;
    cublasMath_t mode;
    int version = 0;
    static float a[N * N], b[N * N], c[N * N];
    float *da = NULL, *db = NULL, *dc = NULL;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st;
    cudaError_t e;

    rt_start();
    RT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS, "cublasCreate");
    RT_EQ(cublasGetVersion(h, &version), CUBLAS_STATUS_SUCCESS, "cublasGetVersion");
    RT_OK(version >= 130000, "cuBLAS version is 13.x or later");
    printf("# cuBLAS version %d\n", version);
    RT_EQ(cudaStreamCreate(&s), cudaSuccess, "cudaStreamCreate");
    RT_EQ(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS, "cublasSetStream");
    RT_EQ(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS,
          "cublasSetMathMode(TF32)");
    RT_EQ(cublasGetMathMode(h, &mode), CUBLAS_STATUS_SUCCESS, "cublasGetMathMode");
    RT_EQ(mode, CUBLAS_TF32_TENSOR_OP_MATH, "math mode reads back");
    RT_EQ(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS,
          "cublasSetMathMode(default)");

    for (int i = 0; i < N * N; i++) {
        a[i] = (float)(i % 7) - 3.0f;
        b[i] = (float)(i % 5) * 0.5f;
    }
    RT_EQ(cudaMalloc((void **)&da, sizeof(a)), cudaSuccess, "cudaMalloc A");
    RT_EQ(cudaMalloc((void **)&db, sizeof(b)), cudaSuccess, "cudaMalloc B");
    RT_EQ(cudaMalloc((void **)&dc, sizeof(c)), cudaSuccess, "cudaMalloc C");
    RT_EQ(cublasSetMatrix(N, N, sizeof(float), a, N, da, N), CUBLAS_STATUS_SUCCESS,
          "cublasSetMatrix A");
    RT_EQ(cublasSetMatrix(N, N, sizeof(float), b, N, db, N), CUBLAS_STATUS_SUCCESS,
          "cublasSetMatrix B");
    st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, da, N, db, N, &zero, dc, N);
    e = cudaStreamSynchronize(s);
    if (st == CUBLAS_STATUS_SUCCESS && e == cudaSuccess) {
        double worst = 0;
        RT_EQ(cublasGetMatrix(N, N, sizeof(float), dc, N, c, N), CUBLAS_STATUS_SUCCESS,
              "cublasGetMatrix C");
        for (int j = 0; j < N; j++) {
            for (int i = 0; i < N; i++) {
                double ref = 0;
                for (int k = 0; k < N; k++) {
                    ref += (double)a[i + k * N] * b[k + j * N];
                }
                worst = fmax(worst, fabs(ref - c[i + j * N]));
            }
        }
        RT_OK(worst < 1e-3, "cublasSgemm result matches the host's");
    } else {
        /* The launch was made and refused by an executor without kernels. */
        RT_OK(st == CUBLAS_STATUS_SUCCESS || st == CUBLAS_STATUS_EXECUTION_FAILED,
              "cublasSgemm reached its kernel launch");
        RT_EQ(e == cudaSuccess ? cudaErrorNotSupported : e, cudaErrorNotSupported,
              "the launch was refused as not supported (no kernels on this executor)");
        printf("# GEMM launch refused: status %d, %s\n", (int)st, cudaGetErrorName(e));
        cudaGetLastError();
    }
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    RT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS, "cublasDestroy");
    cudaStreamDestroy(s);
    return rt_done();
}
