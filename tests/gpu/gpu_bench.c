/*
 * gpu_bench.c - what the shim costs on a real GPU (tests/gpu/run.sh).
 *
 * An ordinary CUDA driver-API program, linked against NVIDIA's stub
 * libcuda.so with no rpath: run it once with NVIDIA's libcuda.so.1 (native)
 * and once with LD_LIBRARY_PATH pointing at the shim, and compare.  It
 * reports which library it actually got (the shim exports
 * vgc_shim_version), so a run can never silently measure the wrong side.
 *
 * Figures:
 *   launch latency, synchronous: one empty kernel (embedded PTX) launched
 *     and waited for (cuLaunchKernel + cuStreamSynchronize), each timed
 *     alone: median, p99, mean in microseconds
 *   launch latency, asynchronous: a burst of launches on one stream, timed
 *     to the end of the final synchronize, per launch; and the submission
 *     loop alone, per launch
 *   copies: cuMemcpyHtoD / cuMemcpyDtoH from pageable (page-aligned malloc)
 *     and pinned (cuMemAllocHost) memory at 4K 64K 1M 16M 256M 1G up to
 *     --max-size (and --max-size itself), GB/s (10^9 bytes/s), median of
 *     batches
 *
 * Every size is checked by one H2D + D2H round trip, byte for byte, before
 * it is timed.  A CUDA error is reported with its name; an empty kernel that
 * the back end cannot run (CUDA_ERROR_NOT_SUPPORTED, the cpu executor) is
 * reported as "unsupported", not as a failure.
 *
 * Usage: gpu_bench [--quick] [--max-size BYTES|4K|1M|1G] [--label NAME]
 *                  [--json FILE] [--expect native|shim]
 * Exit status: 0 ok, 1 a CUDA error or a wrong result, 2 usage,
 *              4 --expect did not match the library actually loaded.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char empty_ptx[] =
    ".version 7.0\n"
    ".target sm_50\n"
    ".address_size 64\n"
    ".visible .entry vgc_empty()\n"
    "{\n"
    "    ret;\n"
    "}\n";

static int quick;
static FILE *json;
static int json_first_copy = 1;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const char *errname(CUresult r)
{
    const char *s = NULL;
    if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s) {
        return "CUDA_ERROR_?";
    }
    return s;
}

#define CK(call)                                                              \
    do {                                                                      \
        CUresult r_ = (call);                                                 \
        if (r_ != CUDA_SUCCESS) {                                             \
            fprintf(stderr, "gpu_bench: %s failed: %s (%d) at line %d\n",     \
                    #call, errname(r_), (int)r_, __LINE__);                   \
            return 1;                                                         \
        }                                                                     \
    } while (0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
    int i;
    qsort(v, n, sizeof *v, cmp_double);
    i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case 0: break;
    default: return 0;
    }
    return (size_t)v;
}

static const char *size_name(size_t n, char *buf, size_t len)
{
    if (n >= (1u << 30) && n % (1u << 30) == 0) {
        snprintf(buf, len, "%zu GiB", n >> 30);
    } else if (n >= (1u << 20) && n % (1u << 20) == 0) {
        snprintf(buf, len, "%zu MiB", n >> 20);
    } else if (n >= 1024 && n % 1024 == 0) {
        snprintf(buf, len, "%zu KiB", n >> 10);
    } else {
        snprintf(buf, len, "%zu B", n);
    }
    return buf;
}

/* Launch latency.  Returns 0, 1 on error; *supported = 0 when the back end
 * cannot run kernels. */
static int bench_launch(CUfunction fn, CUstream st, int *supported)
{
    int n_sync = quick ? 300 : 5000, n_async = quick ? 1000 : 20000;
    int rounds = quick ? 2 : 5, i, done = 0;
    double *s = calloc(n_sync, sizeof *s), t0, budget_end;
    double sub[8], tot[8];
    CUresult r;

    if (!s) {
        return 1;
    }
    r = cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, st, NULL, NULL);
    if (r == CUDA_ERROR_NOT_SUPPORTED) {
        *supported = 0;
        printf("launch: the back end cannot run kernels (CUDA_ERROR_NOT_SUPPORTED)\n");
        if (json) {
            fprintf(json, "  \"launch\": {\"supported\": false},\n");
        }
        free(s);
        return 0;
    }
    CK(r);
    CK(cuStreamSynchronize(st));
    *supported = 1;
    for (i = 0; i < 200; i++) {              /* warm-up */
        CK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, st, NULL, NULL));
        CK(cuStreamSynchronize(st));
    }
    /* at most ~3 s of synchronous launches, whatever they cost */
    budget_end = now_us() + (quick ? 0.5e6 : 3e6);
    for (i = 0; i < n_sync; i++) {
        t0 = now_us();
        CK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, st, NULL, NULL));
        CK(cuStreamSynchronize(st));
        s[i] = now_us() - t0;
        done = i + 1;
        if (s[i] + t0 > budget_end && done >= 100) {
            break;
        }
    }
    double mean = 0;
    for (i = 0; i < done; i++) {
        mean += s[i];
    }
    mean /= done;
    double med = percentile(s, done, 0.5), p99 = percentile(s, done, 0.99);

    for (int k = 0; k < rounds; k++) {
        double t1;
        t0 = now_us();
        for (i = 0; i < n_async; i++) {
            CK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, st, NULL, NULL));
        }
        t1 = now_us();
        CK(cuStreamSynchronize(st));
        sub[k] = (t1 - t0) / n_async;
        tot[k] = (now_us() - t0) / n_async;
    }
    double async_tot = percentile(tot, rounds, 0.5), async_sub = percentile(sub, rounds, 0.5);

    printf("launch sync:  median %8.2f us  p99 %8.2f us  mean %8.2f us  (%d launches)\n",
           med, p99, mean, done);
    printf("launch async: %8.3f us per launch to completion, %8.3f us submission only "
           "(%d x %d launches)\n", async_tot, async_sub, rounds, n_async);
    if (json) {
        fprintf(json, "  \"launch\": {\"supported\": true,\n"
                "    \"sync_us\": {\"median\": %.3f, \"p99\": %.3f, \"mean\": %.3f, \"n\": %d},\n"
                "    \"async_us\": {\"per_launch\": %.4f, \"submit_only\": %.4f, \"n\": %d, "
                "\"rounds\": %d}},\n", med, p99, mean, done, async_tot, async_sub, n_async, rounds);
    }
    free(s);
    return 0;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++) {
        p[i] = (unsigned char)i;
    }
}

static void json_copy(const char *dir, const char *mem, size_t size, double gbps,
                      double us, int copies, const char *error)
{
    if (!json) {
        return;
    }
    fprintf(json, "%s    {\"dir\": \"%s\", \"mem\": \"%s\", \"bytes\": %zu, ",
            json_first_copy ? "" : ",\n", dir, mem, size);
    if (error) {
        fprintf(json, "\"gbps\": null, \"us_per_copy\": null, \"copies\": 0, \"error\": \"%s\"}",
                error);
    } else {
        fprintf(json, "\"gbps\": %.4f, \"us_per_copy\": %.3f, \"copies\": %d}", gbps, us, copies);
    }
    json_first_copy = 0;
}

/* Times one direction from one host buffer at one size. */
static int time_copy(int h2d, const char *mem, unsigned char *host, CUdeviceptr dev, size_t size)
{
    size_t target = quick ? (size_t)64 << 20 : (size_t)2 << 30;   /* bytes per figure */
    int batches = quick ? 3 : 5, k, i;
    long reps = (long)(target / size);
    double t[8], t0, cap_us = quick ? 0.3e6 : 2.5e6;
    char nm[32];

    if (reps < batches) {
        reps = batches;
    }
    if (reps > 20000) {
        reps = 20000;
    }
    int per = (int)(reps / batches);
    /* one copy first: it sizes the batches to the time cap */
    t0 = now_us();
    if (h2d) {
        CK(cuMemcpyHtoD(dev, host, size));
    } else {
        CK(cuMemcpyDtoH(host, dev, size));
    }
    double one = now_us() - t0;
    if (one * per * batches > cap_us) {
        per = (int)(cap_us / batches / (one > 1 ? one : 1));
        if (per < 1) {
            per = 1;
        }
    }
    for (k = 0; k < batches; k++) {
        t0 = now_us();
        for (i = 0; i < per; i++) {
            if (h2d) {
                CK(cuMemcpyHtoD(dev, host, size));
            } else {
                CK(cuMemcpyDtoH(host, dev, size));
            }
        }
        t[k] = (now_us() - t0) / per;
    }
    double us = percentile(t, batches, 0.5);
    double gbps = size / (us * 1e3);
    printf("%-3s %-8s %8s: %9.3f GB/s  %10.2f us/copy  (%d x %d copies)\n",
           h2d ? "H2D" : "D2H", mem, size_name(size, nm, sizeof nm), gbps, us, batches, per);
    json_copy(h2d ? "H2D" : "D2H", mem, size, gbps, us, batches * per, NULL);
    return 0;
}

static int verify(unsigned char *src, unsigned char *dst, CUdeviceptr dev, size_t size, int seed)
{
    fill(src, size, (uint64_t)seed);
    memset(dst, 0xA5, size);
    CK(cuMemcpyHtoD(dev, src, size));
    CK(cuMemcpyDtoH(dst, dev, size));
    if (memcmp(src, dst, size) != 0) {
        fprintf(stderr, "gpu_bench: round trip of %zu bytes came back different\n", size);
        return 1;
    }
    return 0;
}

static int bench_copies(size_t max_size)
{
    unsigned char *page_a = NULL, *page_b = NULL;
    void *pin_a = NULL, *pin_b = NULL;
    CUdeviceptr dev = 0;
    CUresult r;
    int pinned_ok = 1, rc = 1;
    size_t size;

    if (posix_memalign((void **)&page_a, 4096, max_size) ||
        posix_memalign((void **)&page_b, 4096, max_size)) {
        fprintf(stderr, "gpu_bench: cannot allocate %zu bytes of host memory\n", max_size);
        return 1;
    }
    memset(page_a, 1, max_size);
    memset(page_b, 2, max_size);
    CK(cuMemAlloc(&dev, max_size));
    r = cuMemAllocHost(&pin_a, max_size);
    if (r == CUDA_SUCCESS) {
        r = cuMemAllocHost(&pin_b, max_size);
    }
    if (r != CUDA_SUCCESS) {
        printf("pinned: cuMemAllocHost(%zu) failed: %s; pinned figures left out\n", max_size,
               errname(r));
        pinned_ok = 0;
    } else {
        memset(pin_a, 3, max_size);
        memset(pin_b, 4, max_size);
    }
    if (json) {
        fprintf(json, "  \"copies\": [\n");
    }
    /* 4K 64K 1M 16M 256M 1G up to max_size, then max_size if it is not one */
    static const size_t sizes[] = {4096, 65536, 1 << 20, 16 << 20, 256 << 20, (size_t)1 << 30};
    size_t list[8], nl = 0, k;
    for (k = 0; k < sizeof sizes / sizeof sizes[0] && sizes[k] <= max_size; k++) {
        list[nl++] = sizes[k];
    }
    if (nl == 0 || list[nl - 1] != max_size) {
        list[nl++] = max_size;
    }
    for (k = 0; k < nl; k++) {
        size = list[k];
        if (verify(page_a, page_b, dev, size, (int)size) ||
            (pinned_ok && verify(pin_a, pin_b, dev, size, (int)size + 1))) {
            goto out;
        }
        if (time_copy(1, "pageable", page_a, dev, size) ||
            time_copy(0, "pageable", page_b, dev, size)) {
            goto out;
        }
        if (pinned_ok) {
            if (time_copy(1, "pinned", pin_a, dev, size) ||
                time_copy(0, "pinned", pin_b, dev, size)) {
                goto out;
            }
        } else {
            json_copy("H2D", "pinned", size, 0, 0, 0, errname(r));
            json_copy("D2H", "pinned", size, 0, 0, 0, errname(r));
        }
    }
    rc = 0;
out:
    if (json) {
        fprintf(json, "\n  ],\n");
    }
    if (pin_a) {
        cuMemFreeHost(pin_a);
    }
    if (pin_b) {
        cuMemFreeHost(pin_b);
    }
    cuMemFree(dev);
    free(page_a);
    free(page_b);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: gpu_bench [--quick] [--max-size BYTES|4K|1M|1G] [--label NAME]\n"
                    "                 [--json FILE] [--expect native|shim]\n");
    return 2;
}

int main(int argc, char **argv)
{
    size_t max_size = (size_t)1 << 30;
    const char *label = "run", *json_path = NULL, *expect = NULL;
    CUdevice devh;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUstream st;
    char name[256] = "?";
    int i, drv = 0, supported = 0;
    Dl_info info;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--max-size") && i + 1 < argc) {
            max_size = parse_size(argv[++i]);
            if (max_size < 4096) {
                fprintf(stderr, "gpu_bench: --max-size must be at least 4K\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--label") && i + 1 < argc) {
            label = argv[++i];
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json_path = argv[++i];
        } else if (!strcmp(argv[i], "--expect") && i + 1 < argc) {
            expect = argv[++i];
            if (strcmp(expect, "native") && strcmp(expect, "shim")) {
                return usage();
            }
        } else {
            return usage();
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Which libcuda did the loader give us? */
    int is_shim = dlsym(RTLD_DEFAULT, "vgc_shim_version") != NULL;
    const char *lib = "?";
    void *sym = dlsym(RTLD_DEFAULT, "cuInit");
    if (sym && dladdr(sym, &info) && info.dli_fname) {
        lib = info.dli_fname;
    }
    printf("gpu_bench %s: libcuda %s (%s)\n", label, lib, is_shim ? "shim" : "native");
    if (expect && strcmp(expect, is_shim ? "shim" : "native") != 0) {
        fprintf(stderr, "gpu_bench: expected the %s libcuda but got %s (%s)\n", expect,
                is_shim ? "the shim" : "NVIDIA's", lib);
        return 4;
    }

    CK(cuInit(0));
    CK(cuDriverGetVersion(&drv));
    CK(cuDeviceGet(&devh, 0));
    CK(cuDeviceGetName(name, sizeof name, devh));
    CK(cuDevicePrimaryCtxRetain(&ctx, devh));
    CK(cuCtxSetCurrent(ctx));
    CK(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    printf("device 0: %s, driver API %d\n", name, drv);

    if (json_path) {
        json = fopen(json_path, "w");
        if (!json) {
            perror(json_path);
            return 1;
        }
        fprintf(json, "{\n  \"label\": \"%s\", \"driver\": \"%s\", \"libcuda\": \"%s\",\n"
                "  \"device\": \"%s\", \"driver_version\": %d, \"quick\": %s, \"max_size\": %zu,\n",
                label, is_shim ? "shim" : "native", lib, name, drv, quick ? "true" : "false",
                max_size);
    }

    CK(cuModuleLoadData(&mod, empty_ptx));
    CK(cuModuleGetFunction(&fn, mod, "vgc_empty"));
    if (bench_launch(fn, st, &supported)) {
        return 1;
    }
    if (bench_copies(max_size)) {
        return 1;
    }
    CK(cuStreamDestroy(st));
    CK(cuModuleUnload(mod));
    CK(cuDevicePrimaryCtxRelease(devh));
    if (json) {
        fprintf(json, "  \"complete\": true\n}\n");
        fclose(json);
    }
    return 0;
}
