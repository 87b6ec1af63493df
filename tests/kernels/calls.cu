// calls.cu - kernels that call device functions that stay calls (the
// __noinline__ ones, recursion, a struct returned by value) and printf;
// run by test_calls.c, built with -O3 (fatbin) and -G (PTX, every
// function a call, nothing optimised).
#include <cstdio>

struct calls_pair {
    int a;
    float b;
    long long c;
};

__device__ __noinline__ int calls_sq(int x) { return x * x; }

__device__ __noinline__ float calls_scale(float a, double b, int c)
{
    return a * (float)b + (float)c;
}

__device__ __noinline__ int calls_fact(int n)
{
    return n <= 1 ? 1 : n * calls_fact(n - 1);
}

__device__ __noinline__ calls_pair calls_make(int i)
{
    calls_pair p;

    p.a = i;
    p.b = (float)i * 0.5f;
    p.c = (long long)i << 33;
    return p;
}

__device__ __noinline__ void calls_store(int *out, int i, int v)
{
    out[i] = v;
}

__device__ __noinline__ int calls_warp_sum(int v)
{
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, o);
    }
    return v;
}

extern "C" __global__ void calls_kernel(int *out, float *fo, long long *lo,
                                        int *wsum, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int s = calls_warp_sum(i);          // every lane: warp-uniform call

    if ((threadIdx.x & 31) == 0) {
        wsum[i / 32] = s;
    }
    if (i >= n) {
        return;
    }
    // divergent calls: odd lanes square, even lanes recurse
    int v = (i & 1) ? calls_sq(i) : calls_fact(i % 10);
    calls_store(out, i, v);
    fo[i] = calls_scale(1.5f, 2.0, i);
    calls_pair p = calls_make(i);
    lo[i] = p.c + p.a + (long long)p.b;
}

extern "C" __global__ void calls_printf(int *ret, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        ret[i] = printf("calls_printf %d: %5.2f %s %c %x %lld %u %%\n", i,
                        i * 0.25, "str", 'a' + i, 255 + i,
                        (long long)i << 40, 4000000000u);
    }
}
