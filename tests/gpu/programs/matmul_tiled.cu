// matmul_tiled.cu - shared-memory tiled SGEMM as in the CUDA samples: pinned
// host memory, a stream, async copies, events for timing, checked against
// the CPU in double precision.  Exit 0 and "PASS" when it matches.
// SPDX-License-Identifier: GPL-2.0-or-later
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cuda_runtime.h>

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
    return 1; } } while (0)

#define TILE 32

__global__ void matmul(const float *A, const float *B, float *C, int n)
{
    __shared__ float As[TILE][TILE + 1];
    __shared__ float Bs[TILE][TILE + 1];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < n / TILE; t++) {
        As[threadIdx.y][threadIdx.x] = A[row * n + t * TILE + threadIdx.x];
        Bs[threadIdx.y][threadIdx.x] = B[(t * TILE + threadIdx.y) * n + col];
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TILE; k++)
            acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    C[row * n + col] = acc;
}

int main()
{
    const int n = 512;
    size_t bytes = (size_t)n * n * sizeof(float);
    float *A, *B, *C, *dA, *dB, *dC;
    cudaStream_t s;
    cudaEvent_t e0, e1;

    CHECK(cudaMallocHost(&A, bytes));
    CHECK(cudaMallocHost(&B, bytes));
    CHECK(cudaMallocHost(&C, bytes));
    srand(7);
    for (int i = 0; i < n * n; i++) {
        A[i] = rand() / (float)RAND_MAX - 0.5f;
        B[i] = rand() / (float)RAND_MAX - 0.5f;
        C[i] = NAN;
    }
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaMalloc(&dA, bytes));
    CHECK(cudaMalloc(&dB, bytes));
    CHECK(cudaMalloc(&dC, bytes));
    CHECK(cudaMemcpyAsync(dA, A, bytes, cudaMemcpyHostToDevice, s));
    CHECK(cudaMemcpyAsync(dB, B, bytes, cudaMemcpyHostToDevice, s));
    dim3 block(TILE, TILE), grid(n / TILE, n / TILE);
    matmul<<<grid, block, 0, s>>>(dA, dB, dC, n);          // warm-up
    CHECK(cudaGetLastError());
    CHECK(cudaEventRecord(e0, s));
    for (int r = 0; r < 10; r++)
        matmul<<<grid, block, 0, s>>>(dA, dB, dC, n);
    CHECK(cudaEventRecord(e1, s));
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpyAsync(C, dC, bytes, cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));

    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double ref = 0;
            for (int k = 0; k < n; k++)
                ref += (double)A[i * n + k] * B[k * n + j];
            double d = C[i * n + j] - ref;
            num += d * d;
            den += ref * ref;
        }
    }
    double rel = sqrt(num / den);
    printf("matmul %dx%d: %.3f ms per product (events), %.1f GFLOP/s, rel. error %.2e\n", n, n,
           ms / 10, 2.0 * n * n * n / (ms / 10 * 1e6), rel);
    if (!(rel < 1e-5)) {
        fprintf(stderr, "FAIL: relative error %.3e\n", rel);
        return 1;
    }
    CHECK(cudaFree(dA)); CHECK(cudaFree(dB)); CHECK(cudaFree(dC));
    CHECK(cudaFreeHost(A)); CHECK(cudaFreeHost(B)); CHECK(cudaFreeHost(C));
    CHECK(cudaEventDestroy(e0)); CHECK(cudaEventDestroy(e1));
    CHECK(cudaStreamDestroy(s));
    printf("PASS matmul_tiled\n");
    return 0;
}
