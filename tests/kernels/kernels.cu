/*
 * kernels.cu - device code run by the cpu executor's PTX interpreter in
 * tests/kernels/test_kernels.c.  Built with nvcc -O3 into a fatbin (PTX
 * included) at build time; extern "C" keeps the names unmangled.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

extern "C" __global__ void vec_add(const float *a, const float *b, float *c,
                                   int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

extern "C" __global__ void saxpy(int n, float a, const float *x, float *y)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += blockDim.x * gridDim.x) {
        y[i] = a * x[i] + y[i];
    }
}

/* Block reduction: shared memory down to a warp, then warp shuffles. */
extern "C" __global__ void reduce_sum(const float *in, float *out, int n)
{
    extern __shared__ float sdata[];
    unsigned int tid = threadIdx.x;
    float v = 0.0f;

    for (unsigned int i = blockIdx.x * blockDim.x + tid; i < (unsigned)n;
         i += blockDim.x * gridDim.x) {
        v += in[i];
    }
    sdata[tid] = v;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s >= 32; s >>= 1) {
        if (tid < s) {
            sdata[tid] += sdata[tid + s];
        }
        __syncthreads();
    }
    if (tid < 32) {
        v = sdata[tid];
        for (int off = 16; off > 0; off >>= 1) {
            v += __shfl_down_sync(0xffffffffu, v, off);
        }
        if (tid == 0) {
            atomicAdd(out, v);
        }
    }
}

/* Integer reduction with warp votes, ballots and xor shuffles. */
extern "C" __global__ void warp_ops(const int *in, int *sum, unsigned *ballots,
                                    int *votes, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int v = i < n ? in[i] : 0;
    unsigned b = __ballot_sync(0xffffffffu, v & 1);
    int any = __any_sync(0xffffffffu, v > 1000);
    int all = __all_sync(0xffffffffu, v >= 0);

    for (int m = 16; m > 0; m >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, m);
    }
    if ((threadIdx.x & 31) == 0) {
        int w = i / 32;
        ballots[w] = b;
        votes[w] = any | (all << 1);
        atomicAdd(sum, v);
    }
}

#define TILE 16

extern "C" __global__ void matmul(const float *A, const float *B, float *C,
                                  int M, int N, int K)
{
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;

    for (int t = 0; t < (K + TILE - 1) / TILE; t++) {
        int ac = t * TILE + threadIdx.x;
        int br = t * TILE + threadIdx.y;

        As[threadIdx.y][threadIdx.x] = (row < M && ac < K) ? A[row * K + ac] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = (br < K && col < N) ? B[br * N + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < TILE; k++) {
            acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        }
        __syncthreads();
    }
    if (row < M && col < N) {
        C[row * N + col] = acc;
    }
}

#define NBINS 64

extern "C" __global__ void histogram(const unsigned char *data, int n,
                                     unsigned int *bins)
{
    __shared__ unsigned int local[NBINS];

    for (int i = threadIdx.x; i < NBINS; i += blockDim.x) {
        local[i] = 0;
    }
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += blockDim.x * gridDim.x) {
        atomicAdd(&local[data[i] % NBINS], 1u);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < NBINS; i += blockDim.x) {
        atomicAdd(&bins[i], local[i]);
    }
}

/* Atomics of every kind on global and shared memory. */
extern "C" __global__ void atomics(int *g, unsigned *gu, unsigned long long *g64,
                                   float *gf)
{
    __shared__ int s[4];
    int t = threadIdx.x;

    if (t < 4) {
        s[t] = 0;
    }
    __syncthreads();
    atomicAdd(&g[0], t);
    atomicMin(&g[1], -t);
    atomicMax(&g[2], t);
    atomicAnd(&g[3], ~(1 << (t & 31)));
    atomicOr(&g[4], 1 << (t & 31));
    atomicXor(&g[5], t);
    atomicExch(&g[6], 7);
    atomicCAS(&g[7], 0, t + 1);
    atomicInc(&gu[0], 9u);
    atomicDec(&gu[1], 5u);
    atomicAdd(&g64[0], (unsigned long long)t);
    atomicMax(&g64[1], (unsigned long long)t * 1000000000ull);
    atomicAdd(&gf[0], 0.5f);
    atomicAdd(&s[0], 1);
    atomicMax(&s[1], t);
    atomicCAS(&s[2], 0, 5);
    __syncthreads();
    if (t < 3) {
        g[8 + t] = s[t];
    }
}

extern "C" __global__ void stencil2d(const float *in, float *out, int w, int h)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;

    if (x >= w || y >= h) {
        return;
    }
    if (x == 0 || y == 0 || x == w - 1 || y == h - 1) {
        out[y * w + x] = in[y * w + x];
        return;
    }
    out[y * w + x] = 0.2f * (in[y * w + x] + in[y * w + x - 1] +
                             in[y * w + x + 1] + in[(y - 1) * w + x] +
                             in[(y + 1) * w + x]);
}

extern "C" __global__ void dmath(const double *x, double *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        double v = x[i];

        out[4 * i + 0] = sqrt(v) * v + 1.0 / (v + 1.0);
        out[4 * i + 1] = fma(v, 3.0, -2.5) / 7.0;
        out[4 * i + 2] = (double)(long long)(v * 1000.0) + (double)(int)v;
        out[4 * i + 3] = fmin(v, 2.0) - fmax(v, 3.0) + fabs(-v);
    }
}

/* Single-precision intrinsics, conversions and bit operations. */
extern "C" __global__ void fmath(const float *x, float *fo, unsigned *uo, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        float v = x[i];
        unsigned u = __float_as_uint(v) ^ (unsigned)i * 2654435761u;

        fo[8 * i + 0] = __fsqrt_rn(v);
        fo[8 * i + 1] = rsqrtf(v);
        fo[8 * i + 2] = __frcp_rn(v);
        fo[8 * i + 3] = __sinf(v);
        fo[8 * i + 4] = __cosf(v);
        fo[8 * i + 5] = exp2f(v * 0.01f);
        fo[8 * i + 6] = __log2f(v);
        fo[8 * i + 7] = (float)__float2int_rd(v * 3.7f) + __int2float_rz(i);
        uo[8 * i + 0] = __popc(u);
        uo[8 * i + 1] = __clz(u);
        uo[8 * i + 2] = __brev(u);
        uo[8 * i + 3] = (u >> 5) & 0x3ffu;
        uo[8 * i + 4] = (u & ~0xff0u) | ((unsigned)i << 4 & 0xff0u);
        uo[8 * i + 5] = __umulhi(u, 0x9e3779b9u);
        uo[8 * i + 6] = (unsigned)((int)u / (i - 7 == 0 ? 3 : i - 7));
        uo[8 * i + 7] = (unsigned)(((unsigned long long)u * u) >> 17);
    }
}

/* A deliberately wild write, for the illegal-address check. */
extern "C" __global__ void wild_write(int *p, long long off)
{
    p[off] = 1;
}

/* Never finishes, for the budget / cancellation check. */
extern "C" __global__ void spin(volatile int *flag)
{
    while (*flag == 0) {
    }
}
