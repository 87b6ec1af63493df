/*
 * test_kernels.c - nvcc -O3 kernels (kernels.cu) run through the driver
 * API and checked against a CPU reference.  Against vgcd --executor cpu
 * this exercises the PTX interpreter end to end: shim, socket, worker,
 * executor.  The fatbin and PTX are built by meson; their paths come in
 * as VGC_KERNELS_FATBIN / VGC_KERNELS_PTX (or argv[1] / argv[2]).
 *
 * Prints one "ok" / "not ok" line per check; exits 0 when all pass.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <cuda.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tk_fails;

#define CK(call) do {                                                   \
        CUresult r_ = (call);                                           \
        if (r_ != CUDA_SUCCESS) {                                       \
            printf("Bail out! %s:%d: %s = %d\n", __FILE__, __LINE__,    \
                   #call, (int)r_);                                     \
            exit(2);                                                    \
        }                                                               \
    } while (0)

static void tk_check(bool ok, const char *fmt, const char *what, long a,
                     long b)
{
    printf("%s - ", ok ? "ok" : "not ok");
    printf(fmt, what, a, b);
    printf("\n");
    fflush(stdout);
    tk_fails += !ok;
}

#define CHECK(cond, what) tk_check((cond), "%s", (what), 0, 0)

static char *tk_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        printf("Bail out! cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        printf("Bail out! cannot read %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static CUdeviceptr tk_alloc(size_t n, const void *src)
{
    CUdeviceptr p;

    CK(cuMemAlloc(&p, n));
    if (src) {
        CK(cuMemcpyHtoD(p, src, n));
    } else {
        CK(cuMemsetD8(p, 0, n));
    }
    return p;
}

static CUresult tk_launch(CUmodule mod, const char *name, unsigned gx,
                          unsigned gy, unsigned bx, unsigned by,
                          unsigned shmem, void **args)
{
    CUfunction f;
    CUresult rc;

    CK(cuModuleGetFunction(&f, mod, name));
    rc = cuLaunchKernel(f, gx, gy, 1, bx, by, 1, shmem, NULL, args, NULL);
    if (rc != CUDA_SUCCESS) {
        return rc;
    }
    return cuCtxSynchronize();
}

static bool tk_close(double a, double b, double tol)
{
    return fabs(a - b) <= tol * (1.0 + fabs(b));
}

static void test_vec_add(CUmodule mod, const char *label)
{
    enum { N = 10007 };
    static float a[N], b[N], c[N];
    CUdeviceptr da, db, dc;
    int n = N, i, bad = 0;
    void *args[] = { &da, &db, &dc, &n };
    char what[96];

    for (i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(N - i);
    }
    da = tk_alloc(sizeof(a), a);
    db = tk_alloc(sizeof(b), b);
    dc = tk_alloc(sizeof(c), NULL);
    CK(tk_launch(mod, "vec_add", (N + 255) / 256, 1, 256, 1, 0, args));
    CK(cuMemcpyDtoH(c, dc, sizeof(c)));
    for (i = 0; i < N; i++) {
        bad += c[i] != a[i] + b[i];
    }
    snprintf(what, sizeof(what), "vec_add (%s), n=%d", label, N);
    CHECK(bad == 0, what);
    cuMemFree(da);
    cuMemFree(db);
    cuMemFree(dc);
}

/* The same kernel with its parameters packed in "extra". */
static void test_extra(CUmodule mod)
{
    enum { N = 999 };
    static float a[N], b[N], c[N];
    CUdeviceptr da, db, dc;
    CUfunction f;
    int i, bad = 0;
    struct {
        CUdeviceptr a, b, c;
        int n;
        int pad;
    } buf;
    size_t size = 28;
    void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, &buf,
                      CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                      CU_LAUNCH_PARAM_END };

    for (i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = 1.0f;
    }
    da = tk_alloc(sizeof(a), a);
    db = tk_alloc(sizeof(b), b);
    dc = tk_alloc(sizeof(c), NULL);
    buf.a = da;
    buf.b = db;
    buf.c = dc;
    buf.n = N;
    CK(cuModuleGetFunction(&f, mod, "vec_add"));
    CK(cuLaunchKernel(f, 4, 1, 1, 256, 1, 1, 0, NULL, NULL, extra));
    CK(cuCtxSynchronize());
    CK(cuMemcpyDtoH(c, dc, sizeof(c)));
    for (i = 0; i < N; i++) {
        bad += c[i] != a[i] + 1.0f;
    }
    CHECK(bad == 0, "vec_add with parameters in extra");
    cuMemFree(da);
    cuMemFree(db);
    cuMemFree(dc);
}

static void test_saxpy(CUmodule mod)
{
    enum { N = 100003 };
    static float x[N], y[N], r[N];
    CUdeviceptr dx, dy;
    int n = N, i, bad = 0;
    float a = 2.5f;
    void *args[] = { &n, &a, &dx, &dy };

    for (i = 0; i < N; i++) {
        x[i] = (float)(i % 1000) * 0.25f;
        y[i] = (float)(i % 77);
    }
    dx = tk_alloc(sizeof(x), x);
    dy = tk_alloc(sizeof(y), y);
    CK(tk_launch(mod, "saxpy", 64, 1, 128, 1, 0, args));
    CK(cuMemcpyDtoH(r, dy, sizeof(r)));
    for (i = 0; i < N; i++) {
        bad += !tk_close(r[i], a * x[i] + y[i], 1e-6);
    }
    CHECK(bad == 0, "saxpy, grid-stride loop, n=100003");
    cuMemFree(dx);
    cuMemFree(dy);
}

static void test_reduce(CUmodule mod)
{
    enum { N = (1 << 20) + 77 };
    float *in = malloc(N * sizeof(float)), out = 0;
    CUdeviceptr din, dout;
    int n = N, i;
    double want = 0;
    void *args[] = { &din, &dout, &n };

    for (i = 0; i < N; i++) {
        in[i] = (float)(i % 7);
        want += in[i];
    }
    din = tk_alloc(N * sizeof(float), in);
    dout = tk_alloc(sizeof(float), NULL);
    CK(tk_launch(mod, "reduce_sum", 80, 1, 256, 1, 256 * sizeof(float),
                 args));
    CK(cuMemcpyDtoH(&out, dout, sizeof(out)));
    tk_check(out == (float)want, "%s: got %ld want %ld",
             "reduce_sum, shared memory + shfl.down + atomicAdd",
             (long)out, (long)want);
    free(in);
    cuMemFree(din);
    cuMemFree(dout);
}

static void test_warp_ops(CUmodule mod)
{
    enum { N = 1000, T = 1024 };
    static int in[N], votes[T / 32];
    static unsigned ballots[T / 32];
    CUdeviceptr din, dsum, db, dv;
    int n = N, i, w, sum = 0, gsum = 0, bad = 0;
    void *args[] = { &din, &dsum, &db, &dv, &n };

    for (i = 0; i < N; i++) {
        in[i] = (i * 37) % 1500;
        gsum += in[i];
    }
    din = tk_alloc(sizeof(in), in);
    dsum = tk_alloc(sizeof(int), NULL);
    db = tk_alloc(sizeof(ballots), NULL);
    dv = tk_alloc(sizeof(votes), NULL);
    CK(tk_launch(mod, "warp_ops", T / 128, 1, 128, 1, 0, args));
    CK(cuMemcpyDtoH(&sum, dsum, sizeof(sum)));
    CK(cuMemcpyDtoH(ballots, db, sizeof(ballots)));
    CK(cuMemcpyDtoH(votes, dv, sizeof(votes)));
    for (w = 0; w < T / 32; w++) {
        unsigned b = 0;
        int any = 0, all = 1;

        for (i = 0; i < 32; i++) {
            int g = w * 32 + i, v = g < N ? in[g] : 0;

            b |= (unsigned)(v & 1) << i;
            any |= v > 1000;
            all &= v >= 0;
        }
        bad += ballots[w] != b || votes[w] != (any | all << 1);
    }
    tk_check(sum == gsum, "%s: got %ld want %ld",
             "warp_ops: shfl.bfly sum", sum, gsum);
    CHECK(bad == 0, "warp_ops: ballot, any, all per warp");
    cuMemFree(din);
    cuMemFree(dsum);
    cuMemFree(db);
    cuMemFree(dv);
}

static void test_matmul(CUmodule mod)
{
    enum { M = 37, NN = 29, K = 41 };
    static float a[M * K], b[K * NN], c[M * NN];
    CUdeviceptr da, db, dc;
    int m = M, n = NN, k = K, i, j, l, bad = 0;
    void *args[] = { &da, &db, &dc, &m, &n, &k };

    for (i = 0; i < M * K; i++) {
        a[i] = (float)((i * 13) % 17) - 8.0f;
    }
    for (i = 0; i < K * NN; i++) {
        b[i] = (float)((i * 7) % 11) * 0.5f;
    }
    da = tk_alloc(sizeof(a), a);
    db = tk_alloc(sizeof(b), b);
    dc = tk_alloc(sizeof(c), NULL);
    CK(tk_launch(mod, "matmul", (NN + 15) / 16, (M + 15) / 16, 16, 16, 0,
                 args));
    CK(cuMemcpyDtoH(c, dc, sizeof(c)));
    for (i = 0; i < M; i++) {
        for (j = 0; j < NN; j++) {
            double s = 0;

            for (l = 0; l < K; l++) {
                s += (double)a[i * K + l] * b[l * NN + j];
            }
            bad += !tk_close(c[i * NN + j], s, 1e-5);
        }
    }
    CHECK(bad == 0, "matmul, 16x16 shared tiles, 37x41 * 41x29");
    cuMemFree(da);
    cuMemFree(db);
    cuMemFree(dc);
}

static void test_histogram(CUmodule mod)
{
    enum { N = 100000, BINS = 64 };
    static unsigned char data[N];
    static unsigned bins[BINS], want[BINS];
    CUdeviceptr dd, dbins;
    int n = N, i, bad = 0;
    uint32_t x = 12345;
    void *args[] = { &dd, &n, &dbins };

    for (i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
        want[data[i] % BINS]++;
    }
    dd = tk_alloc(sizeof(data), data);
    dbins = tk_alloc(sizeof(bins), NULL);
    CK(tk_launch(mod, "histogram", 32, 1, 128, 1, 0, args));
    CK(cuMemcpyDtoH(bins, dbins, sizeof(bins)));
    for (i = 0; i < BINS; i++) {
        bad += bins[i] != want[i];
    }
    CHECK(bad == 0, "histogram, shared and global atomics");
    cuMemFree(dd);
    cuMemFree(dbins);
}

static void test_atomics(CUmodule mod)
{
    int g[11] = { 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0 };
    unsigned gu[2] = { 0, 0 };
    unsigned long long g64[2] = { 0, 0 };
    float gf = 0;
    CUdeviceptr dg, dgu, dg64, dgf;
    void *args[] = { &dg, &dgu, &dg64, &dgf };

    dg = tk_alloc(sizeof(g), g);
    dgu = tk_alloc(sizeof(gu), gu);
    dg64 = tk_alloc(sizeof(g64), g64);
    dgf = tk_alloc(sizeof(gf), &gf);
    CK(tk_launch(mod, "atomics", 1, 1, 64, 1, 0, args));
    CK(cuMemcpyDtoH(g, dg, sizeof(g)));
    CK(cuMemcpyDtoH(gu, dgu, sizeof(gu)));
    CK(cuMemcpyDtoH(g64, dg64, sizeof(g64)));
    CK(cuMemcpyDtoH(&gf, dgf, sizeof(gf)));
    CHECK(g[0] == 2016 && g[1] == -63 && g[2] == 63,
          "atomics: add, min, max (s32)");
    CHECK(g[3] == 0 && g[4] == -1 && g[5] == 0 && g[6] == 7,
          "atomics: and, or, xor, exch");
    CHECK(g[7] >= 1 && g[7] <= 64, "atomics: cas");
    CHECK(gu[0] == 4 && gu[1] == 2, "atomics: inc, dec with limits");
    CHECK(g64[0] == 2016 && g64[1] == 63000000000ull,
          "atomics: 64-bit add, max");
    CHECK(gf == 32.0f, "atomics: f32 add");
    CHECK(g[8] == 64 && g[9] == 63 && g[10] == 5,
          "atomics: shared add, max, cas");
    cuMemFree(dg);
    cuMemFree(dgu);
    cuMemFree(dg64);
    cuMemFree(dgf);
}

static void test_stencil(CUmodule mod)
{
    enum { W = 67, H = 45 };
    static float in[W * H], out[W * H];
    CUdeviceptr di, dout;
    int w = W, h = H, x, y, bad = 0;
    void *args[] = { &di, &dout, &w, &h };

    for (x = 0; x < W * H; x++) {
        in[x] = (float)((x * 31) % 101) * 0.1f;
    }
    di = tk_alloc(sizeof(in), in);
    dout = tk_alloc(sizeof(out), NULL);
    CK(tk_launch(mod, "stencil2d", (W + 15) / 16, (H + 7) / 8, 16, 8, 0,
                 args));
    CK(cuMemcpyDtoH(out, dout, sizeof(out)));
    for (y = 0; y < H; y++) {
        for (x = 0; x < W; x++) {
            float want = in[y * W + x];

            if (x && y && x != W - 1 && y != H - 1) {
                want = 0.2f * (in[y * W + x] + in[y * W + x - 1] +
                               in[y * W + x + 1] + in[(y - 1) * W + x] +
                               in[(y + 1) * W + x]);
            }
            bad += !tk_close(out[y * W + x], want, 1e-5);
        }
    }
    CHECK(bad == 0, "stencil2d, 2D grid, early returns");
    cuMemFree(di);
    cuMemFree(dout);
}

static void test_dmath(CUmodule mod)
{
    enum { N = 1000 };
    static double x[N], out[4 * N];
    CUdeviceptr dx, dout;
    int n = N, i, bad = 0;
    void *args[] = { &dx, &dout, &n };

    for (i = 0; i < N; i++) {
        x[i] = 0.37 * i + 0.001;
    }
    dx = tk_alloc(sizeof(x), x);
    dout = tk_alloc(sizeof(out), NULL);
    CK(tk_launch(mod, "dmath", (N + 127) / 128, 1, 128, 1, 0, args));
    CK(cuMemcpyDtoH(out, dout, sizeof(out)));
    for (i = 0; i < N; i++) {
        double v = x[i];

        bad += !tk_close(out[4 * i], sqrt(v) * v + 1.0 / (v + 1.0), 1e-14);
        bad += !tk_close(out[4 * i + 1], fma(v, 3.0, -2.5) / 7.0, 1e-14);
        bad += out[4 * i + 2] != (double)(long long)(v * 1000.0) +
                                 (double)(int)v;
        bad += !tk_close(out[4 * i + 3], fmin(v, 2.0) - fmax(v, 3.0) +
                         fabs(-v), 1e-14);
    }
    CHECK(bad == 0, "dmath: f64 sqrt, rcp, fma, div, cvt, min/max/abs");
    cuMemFree(dx);
    cuMemFree(dout);
}

static void test_fmath(CUmodule mod)
{
    enum { N = 300 };
    static float x[N], fo[8 * N];
    static unsigned uo[8 * N];
    CUdeviceptr dx, dfo, duo;
    int n = N, i, badf = 0, badu = 0;
    void *args[] = { &dx, &dfo, &duo, &n };

    for (i = 0; i < N; i++) {
        x[i] = 0.5f + (float)i * 0.33f;
    }
    dx = tk_alloc(sizeof(x), x);
    dfo = tk_alloc(sizeof(fo), NULL);
    duo = tk_alloc(sizeof(uo), NULL);
    CK(tk_launch(mod, "fmath", (N + 63) / 64, 1, 64, 1, 0, args));
    CK(cuMemcpyDtoH(fo, dfo, sizeof(fo)));
    CK(cuMemcpyDtoH(uo, duo, sizeof(uo)));
    for (i = 0; i < N; i++) {
        float v = x[i];
        unsigned u, r = 0;
        int b, d;

        memcpy(&u, &v, 4);
        u ^= (unsigned)i * 2654435761u;
        badf += !tk_close(fo[8 * i], sqrtf(v), 1e-6);
        badf += !tk_close(fo[8 * i + 1], 1.0 / sqrt(v), 1e-5);
        badf += !tk_close(fo[8 * i + 2], 1.0 / v, 1e-6);
        badf += fabs(fo[8 * i + 3] - sin(v)) > 1e-4;
        badf += fabs(fo[8 * i + 4] - cos(v)) > 1e-4;
        badf += !tk_close(fo[8 * i + 5], exp2(v * 0.01), 1e-5);
        badf += fabs(fo[8 * i + 6] - log2(v)) > 1e-5;
        badf += fo[8 * i + 7] != floorf(v * 3.7f) + (float)i;
        for (b = 0; b < 32; b++) {
            r |= ((u >> b) & 1u) << (31 - b);
        }
        d = i - 7 == 0 ? 3 : i - 7;
        badu += uo[8 * i] != (unsigned)__builtin_popcount(u);
        badu += uo[8 * i + 1] != (u ? (unsigned)__builtin_clz(u) : 32u);
        badu += uo[8 * i + 2] != r;
        badu += uo[8 * i + 3] != ((u >> 5) & 0x3ffu);
        badu += uo[8 * i + 4] != ((u & ~0xff0u) | ((unsigned)i << 4 & 0xff0u));
        badu += uo[8 * i + 5] !=
                (unsigned)(((unsigned long long)u * 0x9e3779b9u) >> 32);
        badu += uo[8 * i + 6] != (unsigned)((int)u / d);
        badu += uo[8 * i + 7] !=
                (unsigned)(((unsigned long long)u * u) >> 17);
    }
    tk_check(badf == 0, "%s: %ld of %ld wrong", "fmath: f32 intrinsics and cvt",
             badf, 8L * N);
    tk_check(badu == 0, "%s: %ld of %ld wrong",
             "fmath: popc, clz, brev, bfe, bfi, mul.hi, div", badu, 8L * N);
    cuMemFree(dx);
    cuMemFree(dfo);
    cuMemFree(duo);
}

/* A wild store: CUDA_ERROR_ILLEGAL_ADDRESS, sticky for its context only. */
static void test_illegal(const char *fatbin, size_t len, CUdevice dev,
                         CUcontext good)
{
    CUcontext bad;
    CUmodule mod;
    CUfunction f;
    CUdeviceptr p, q;
    long long off = 1LL << 36;
    void *args[] = { &p, &off };
    CUresult rc;

    CK(cuCtxCreate(&bad, NULL, 0, dev));
    CK(cuModuleLoadData(&mod, fatbin));
    CK(cuModuleGetFunction(&f, mod, "wild_write"));
    CK(cuMemAlloc(&p, 64));
    rc = cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
    if (rc == CUDA_SUCCESS) {
        rc = cuCtxSynchronize();
    }
    tk_check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "%s: got %ld want %ld",
             "wild store ends with CUDA_ERROR_ILLEGAL_ADDRESS", rc,
             CUDA_ERROR_ILLEGAL_ADDRESS);
    rc = cuMemAlloc(&q, 64);
    tk_check(rc == CUDA_ERROR_ILLEGAL_ADDRESS, "%s: got %ld want %ld",
             "the error is sticky in that context", rc,
             CUDA_ERROR_ILLEGAL_ADDRESS);
    (void)len;
    /* The launch's error may also be pending as the session's deferred
     * error (the worker reports it at the next synchronising call), so
     * the destroy may still report it; either way the context goes. */
    rc = cuCtxDestroy(bad);
    tk_check(rc == CUDA_SUCCESS || rc == CUDA_ERROR_ILLEGAL_ADDRESS,
             "%s: got %ld want %ld", "the faulted context can be destroyed",
             rc, CUDA_SUCCESS);
    CK(cuCtxSetCurrent(good));
    rc = cuMemAlloc(&q, 64);
    tk_check(rc == CUDA_SUCCESS, "%s: got %ld want %ld",
             "another context is unaffected", rc, CUDA_SUCCESS);
    if (rc == CUDA_SUCCESS) {
        cuMemFree(q);
    }
}

int main(int argc, char **argv)
{
    const char *fatbin_path = argc > 1 ? argv[1] : VGC_KERNELS_FATBIN;
    const char *ptx_path = argc > 2 ? argv[2] : VGC_KERNELS_PTX;
    size_t flen, plen;
    char *fatbin = tk_read(fatbin_path, &flen);
    char *ptx = tk_read(ptx_path, &plen);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod, pmod;

    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuCtxCreate(&ctx, NULL, 0, dev));
    CK(cuModuleLoadData(&mod, fatbin));
    CK(cuModuleLoadData(&pmod, ptx));

    test_vec_add(mod, "fatbin");
    test_vec_add(pmod, "PTX text");
    test_extra(mod);
    test_saxpy(mod);
    test_reduce(mod);
    test_warp_ops(mod);
    test_matmul(mod);
    test_histogram(mod);
    test_atomics(mod);
    test_stencil(mod);
    test_dmath(mod);
    test_fmath(mod);
    test_illegal(fatbin, flen, dev, ctx);

    CK(cuModuleUnload(mod));
    CK(cuModuleUnload(pmod));
    CK(cuCtxDestroy(ctx));
    free(fatbin);
    free(ptx);
    printf("%s\n", tk_fails ? "FAILED" : "PASSED");
    return tk_fails ? 1 : 0;
}
