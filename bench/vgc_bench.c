/*
 * vgc_bench.c - what the shim costs: the same CUDA driver calls made through
 * libcuda.so.1 (the shim, over VGC_SERVER to vgcd) and in this process on
 * the cpu executor (vgcd_core, through its ops table).
 *
 * Both sides run the same code: a table of driver entry points, filled once
 * with the driver symbols this program links against (NVIDIA's stub at link
 * time, the shim at run time) and once with the cpu executor's ops.  The
 * executor is reached only through its ops table, so its functions never
 * compete with the shim's exported cu* symbols.
 *
 * executor.h brings in vgc_cuda.h, which stops cuda.h from renaming
 * cuMemAlloc to cuMemAlloc_v2 and so on: this file names the versioned
 * symbols itself, the same ones an ordinary program's calls bind to.
 *
 * Measured, each on both sides and interleaved, so that a noisy machine hits
 * both alike:
 *   - latency of a trivial synchronous call (cuDeviceGetAttribute);
 *   - rate of asynchronous submissions (cuMemsetD8Async, 256 bytes);
 *   - H2D and D2H bandwidth from pageable memory, and from pinned memory
 *     (cuMemAllocHost; the cpu executor has none: pageable there).
 * Beside the sync call, a bare socket round trip of the same kind (unix or
 * TCP loopback) is timed in the same run: the floor under any remoting.
 * Every copy size is checked byte-exact once per side.  Any CUDA error ends
 * the program with status 1.
 *
 * Usage: vgc_bench [--quick] [--label NAME] [--json FILE]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "executor.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define GIB ((size_t)1024 * 1024 * 1024)

/* Device memory of the in-process executor, as vgcd --device-memory 2G. */
#define BENCH_INPROC_MEM (2 * GIB)
/* Timed batches per bandwidth figure; the median batch is reported. */
#define BENCH_BATCHES 7
/* Bytes in one asynchronous memset. */
#define BENCH_MEMSET_BYTES 256

/* The driver entry points the benchmark uses, for one side, named after
 * their symbols. */
struct bench_api {
    const char *name;               /* "shim", "in-process" */
    PFN_cuInit_v2000 cuInit;
    PFN_cuDeviceGet_v2000 cuDeviceGet;
    PFN_cuDeviceGetAttribute_v2000 cuDeviceGetAttribute;
    PFN_cuDevicePrimaryCtxRetain_v7000 cuDevicePrimaryCtxRetain;
    PFN_cuDevicePrimaryCtxRelease_v11000 cuDevicePrimaryCtxRelease_v2;
    PFN_cuCtxSetCurrent_v4000 cuCtxSetCurrent;
    PFN_cuCtxSynchronize_v2000 cuCtxSynchronize;
    PFN_cuMemAlloc_v3020 cuMemAlloc_v2;
    PFN_cuMemFree_v3020 cuMemFree_v2;
    PFN_cuMemcpyHtoD_v3020 cuMemcpyHtoD_v2;
    PFN_cuMemcpyDtoH_v3020 cuMemcpyDtoH_v2;
    PFN_cuMemsetD8Async_v3020 cuMemsetD8Async;
    PFN_cuStreamCreate_v2000 cuStreamCreate;
    PFN_cuStreamDestroy_v4000 cuStreamDestroy_v2;
    PFN_cuStreamSynchronize_v2000 cuStreamSynchronize;
    PFN_cuMemAllocHost_v3020 cuMemAllocHost_v2;    /* NULL: no pinned memory */
    PFN_cuMemFreeHost_v2000 cuMemFreeHost;

    /* State after bench_open(). */
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    CUdeviceptr dbuf;               /* bench_cfg.max_size bytes */
};

struct bench_cfg {
    bool quick;
    const char *label;
    const char *json;
    int lat_warmup;
    int lat_calls;
    int async_count;
    int async_reps;
    uint64_t copy_budget;           /* bytes per copy figure, roughly */
    uint64_t copy_min_iters;
    uint64_t copy_max_iters;
    size_t sizes[8];
    int nsizes;
    size_t pinned_sizes[4];
    int npinned;
    size_t max_size;
};

/* One row of the table. */
struct bench_row {
    char name[64];
    const char *unit;
    bool is_rate;                   /* true: bigger is better */
    double shim;
    double inproc;
    uint64_t iters;
};

static struct bench_row bench_rows[64];
static int bench_nrows;
static double bench_timer_ns;

/* ---- errors and time -------------------------------------------------- */

static void __attribute__((noreturn, format(printf, 1, 2)))
bench_die(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "vgc_bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static void bench_check(const struct bench_api *api, CUresult res, const char *what,
                        int line)
{
    const char *name = NULL;

    if (res == CUDA_SUCCESS) {
        return;
    }
    /* Error names are answered by the shim locally; it needs no server. */
    if (cuGetErrorName(res, &name) != CUDA_SUCCESS || !name) {
        name = "unknown error";
    }
    bench_die("%s: %s failed: %s (%d) [vgc_bench.c:%d]", api->name, what, name,
              (int)res, line);
}

#define BENCH_CHECK(api, call) bench_check((api), (call), #call, __LINE__)

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of @n sorted values: nearest rank. */
static uint64_t bench_quantile(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);

    return v[rank ? rank - 1 : 0];
}

static double bench_median_double(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median cost of one clock_gettime() pair: included in per-call times. */
static double bench_timer_overhead(void)
{
    uint64_t v[1001];

    for (size_t i = 0; i < 1001; i++) {
        uint64_t t0 = bench_now_ns();
        uint64_t t1 = bench_now_ns();
        v[i] = t1 - t0;
    }
    qsort(v, 1001, sizeof(v[0]), bench_cmp_u64);
    return (double)v[500];
}

static void *bench_malloc(size_t n)
{
    void *p = malloc(n);

    if (!p) {
        bench_die("out of memory (%zu bytes)", n);
    }
    return p;
}

/*
 * Copy buffers start on a page, as cuMemAllocHost's do.  A malloc()ed
 * buffer starts 16 bytes into its page, and glibc's memcpy (rep movsb) is
 * an order of magnitude slower on some CPUs when the destination lies 1 to
 * 63 bytes after the source modulo 4 KiB: that would time the alignment,
 * not the path.  See bench/README.md.
 */
static void *bench_page_alloc(size_t n)
{
    void *p = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);

    if (!p) {
        bench_die("out of memory (%zu bytes)", n);
    }
    return p;
}

/* ---- the two sides ---------------------------------------------------- */

static void bench_api_shim(struct bench_api *api)
{
    *api = (struct bench_api) {
        .name = "shim",
        .cuInit = cuInit,
        .cuDeviceGet = cuDeviceGet,
        .cuDeviceGetAttribute = cuDeviceGetAttribute,
        .cuDevicePrimaryCtxRetain = cuDevicePrimaryCtxRetain,
        .cuDevicePrimaryCtxRelease_v2 = cuDevicePrimaryCtxRelease_v2,
        .cuCtxSetCurrent = cuCtxSetCurrent,
        .cuCtxSynchronize = cuCtxSynchronize,
        .cuMemAlloc_v2 = cuMemAlloc_v2,
        .cuMemFree_v2 = cuMemFree_v2,
        .cuMemcpyHtoD_v2 = cuMemcpyHtoD_v2,
        .cuMemcpyDtoH_v2 = cuMemcpyDtoH_v2,
        .cuMemsetD8Async = cuMemsetD8Async,
        .cuStreamCreate = cuStreamCreate,
        .cuStreamDestroy_v2 = cuStreamDestroy_v2,
        .cuStreamSynchronize = cuStreamSynchronize,
        .cuMemAllocHost_v2 = cuMemAllocHost_v2,
        .cuMemFreeHost = cuMemFreeHost,
    };
}

static void bench_api_inproc(struct bench_api *api)
{
    struct vgc_executor_config cfg = {
        .ndevices = 1,
        .device_memory = BENCH_INPROC_MEM,
    };
    struct vgc_executor *exec;
    char *err = NULL;

    exec = vgc_executor_create("cpu", &cfg, &err);
    if (!exec) {
        bench_die("in-process: cannot create the cpu executor: %s",
                  err ? err : "unknown error");
    }
    *api = (struct bench_api) {
        .name = "in-process",
        .cuInit = exec->ops.cuInit,
        .cuDeviceGet = exec->ops.cuDeviceGet,
        .cuDeviceGetAttribute = exec->ops.cuDeviceGetAttribute,
        .cuDevicePrimaryCtxRetain = exec->ops.cuDevicePrimaryCtxRetain,
        .cuDevicePrimaryCtxRelease_v2 = exec->ops.cuDevicePrimaryCtxRelease_v2,
        .cuCtxSetCurrent = exec->ops.cuCtxSetCurrent,
        .cuCtxSynchronize = exec->ops.cuCtxSynchronize,
        .cuMemAlloc_v2 = exec->ops.cuMemAlloc_v2,
        .cuMemFree_v2 = exec->ops.cuMemFree_v2,
        .cuMemcpyHtoD_v2 = exec->ops.cuMemcpyHtoD_v2,
        .cuMemcpyDtoH_v2 = exec->ops.cuMemcpyDtoH_v2,
        .cuMemsetD8Async = exec->ops.cuMemsetD8Async,
        .cuStreamCreate = exec->ops.cuStreamCreate,
        .cuStreamDestroy_v2 = exec->ops.cuStreamDestroy_v2,
        .cuStreamSynchronize = exec->ops.cuStreamSynchronize,
        .cuMemAllocHost_v2 = NULL,
        .cuMemFreeHost = NULL,
    };
    if (!api->cuInit || !api->cuDeviceGet || !api->cuDeviceGetAttribute ||
        !api->cuDevicePrimaryCtxRetain || !api->cuDevicePrimaryCtxRelease_v2 ||
        !api->cuCtxSetCurrent || !api->cuCtxSynchronize || !api->cuMemAlloc_v2 ||
        !api->cuMemFree_v2 || !api->cuMemcpyHtoD_v2 || !api->cuMemcpyDtoH_v2 ||
        !api->cuMemsetD8Async || !api->cuStreamCreate || !api->cuStreamDestroy_v2 ||
        !api->cuStreamSynchronize) {
        bench_die("in-process: the cpu executor lacks an entry point this "
                  "benchmark needs");
    }
}

static void bench_open(struct bench_api *api, size_t max_size)
{
    BENCH_CHECK(api, api->cuInit(0));
    BENCH_CHECK(api, api->cuDeviceGet(&api->dev, 0));
    BENCH_CHECK(api, api->cuDevicePrimaryCtxRetain(&api->ctx, api->dev));
    BENCH_CHECK(api, api->cuCtxSetCurrent(api->ctx));
    BENCH_CHECK(api, api->cuStreamCreate(&api->stream, CU_STREAM_NON_BLOCKING));
    BENCH_CHECK(api, api->cuMemAlloc_v2(&api->dbuf, max_size));
}

static void bench_close(struct bench_api *api)
{
    BENCH_CHECK(api, api->cuCtxSynchronize());
    BENCH_CHECK(api, api->cuMemFree_v2(api->dbuf));
    BENCH_CHECK(api, api->cuStreamDestroy_v2(api->stream));
    BENCH_CHECK(api, api->cuCtxSetCurrent(NULL));
    BENCH_CHECK(api, api->cuDevicePrimaryCtxRelease_v2(api->dev));
}

/* ---- results ---------------------------------------------------------- */

static struct bench_row *bench_row_add(const char *unit, bool is_rate, uint64_t iters,
                                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct bench_row *bench_row_add(const char *unit, bool is_rate, uint64_t iters,
                                       const char *fmt, ...)
{
    struct bench_row *r;
    va_list ap;

    if (bench_nrows == (int)(sizeof(bench_rows) / sizeof(bench_rows[0]))) {
        bench_die("too many result rows");
    }
    r = &bench_rows[bench_nrows++];
    memset(r, 0, sizeof(*r));
    va_start(ap, fmt);
    vsnprintf(r->name, sizeof(r->name), fmt, ap);
    va_end(ap);
    r->unit = unit;
    r->is_rate = is_rate;
    r->iters = iters;
    return r;
}

/* Shim cost relative to in-process: > 1 means the shim is slower. */
static double bench_overhead(const struct bench_row *r)
{
    if (r->is_rate) {
        return r->shim > 0 ? r->inproc / r->shim : INFINITY;
    }
    return r->inproc > 0 ? r->shim / r->inproc : INFINITY;
}

static void bench_fmt_size(char *buf, size_t n, size_t size)
{
    if (size >= MIB && size % MIB == 0) {
        snprintf(buf, n, "%zu MiB", size / MIB);
    } else if (size >= KIB && size % KIB == 0) {
        snprintf(buf, n, "%zu KiB", size / KIB);
    } else {
        snprintf(buf, n, "%zu B", size);
    }
}

/* ---- transport floor --------------------------------------------------- */

/*
 * A bare round trip over the same kind of socket, to a forked echo process:
 * what any remoting of a synchronous call pays before doing anything.  On a
 * shared VM the wake-up latency behind it swings several-fold from one
 * second to the next, so it is sampled interleaved with the shim's calls.
 * Sizes: about those of a cuDeviceGetAttribute request and reply.
 */
#define BENCH_FLOOR_REQ 48
#define BENCH_FLOOR_REP 40

static struct {
    const char *kind;               /* "unix", "tcp" */
    int fd;
    pid_t pid;
    double median_us;
    double p99_us;
} bench_floor = { .fd = -1, .pid = -1 };

static int bench_floor_xfer(int fd, void *buf, size_t n, bool out)
{
    uint8_t *p = buf;

    while (n) {
        ssize_t r = out ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void __attribute__((noreturn)) bench_floor_echo(int fd)
{
    uint8_t buf[BENCH_FLOOR_REQ];

    while (bench_floor_xfer(fd, buf, BENCH_FLOOR_REQ, false) == 0 &&
           bench_floor_xfer(fd, buf, BENCH_FLOOR_REP, true) == 0) {
        continue;
    }
    _exit(0);
}

/* Before cuInit: the echo process must not inherit the shim's connection. */
static void bench_floor_start(const char *server)
{
    int one = 1;

    bench_floor.kind = strncmp(server, "tcp:", 4) ? "unix" : "tcp";
    if (!strcmp(bench_floor.kind, "unix")) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            bench_die("socketpair: %s", strerror(errno));
        }
        bench_floor.pid = fork();
        if (bench_floor.pid == 0) {
            close(sv[0]);
            bench_floor_echo(sv[1]);
        }
        close(sv[1]);
        bench_floor.fd = sv[0];
    } else {
        struct sockaddr_in sa = {
            .sin_family = AF_INET,
            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof(sa);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0) {
            bench_die("loopback listener: %s", strerror(errno));
        }
        bench_floor.pid = fork();
        if (bench_floor.pid == 0) {
            int c = accept(l, NULL, NULL);

            if (c < 0) {
                _exit(1);
            }
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            bench_floor_echo(c);
        }
        close(l);
        bench_floor.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (bench_floor.fd < 0 ||
            connect(bench_floor.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            bench_die("loopback connect: %s", strerror(errno));
        }
        setsockopt(bench_floor.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (bench_floor.pid < 0) {
        bench_die("fork: %s", strerror(errno));
    }
}

static void bench_floor_stop(void)
{
    if (bench_floor.fd >= 0) {
        close(bench_floor.fd);          /* the echo process sees EOF */
        bench_floor.fd = -1;
    }
    if (bench_floor.pid > 0) {
        waitpid(bench_floor.pid, NULL, 0);
        bench_floor.pid = -1;
    }
}

static uint64_t bench_floor_ping(void)
{
    uint8_t buf[BENCH_FLOOR_REQ] = { 0 };
    uint64_t t0 = bench_now_ns();

    if (bench_floor_xfer(bench_floor.fd, buf, BENCH_FLOOR_REQ, true) < 0 ||
        bench_floor_xfer(bench_floor.fd, buf, BENCH_FLOOR_REP, false) < 0) {
        bench_die("transport floor: the echo process went away");
    }
    return bench_now_ns() - t0;
}

/* ---- (a) latency of a trivial synchronous call ------------------------ */

/* Rounds of calls timed one by one; interleaved with the floor's. */
#define BENCH_LAT_ROUNDS 10

static uint64_t bench_call_once(struct bench_api *api)
{
    int v = 0;
    uint64_t t0 = bench_now_ns(), t1;
    CUresult res = api->cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                             api->dev);

    t1 = bench_now_ns();
    BENCH_CHECK(api, res);
    if (v <= 0) {
        bench_die("%s: cuDeviceGetAttribute(MULTIPROCESSOR_COUNT) answered %d",
                  api->name, v);
    }
    return t1 - t0;
}

/* All @n calls under one timer, free of the timer's own cost: ns per call. */
static double bench_call_mean(struct bench_api *api, int n)
{
    uint64_t t0 = bench_now_ns();
    int v = 0;

    for (int i = 0; i < n; i++) {
        BENCH_CHECK(api, api->cuDeviceGetAttribute(
                             &v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, api->dev));
    }
    return (double)(bench_now_ns() - t0) / n;
}

static void bench_latency(struct bench_api *shim, struct bench_api *inproc,
                          const struct bench_cfg *cfg)
{
    size_t n = (size_t)cfg->lat_calls;
    uint64_t *s = bench_malloc(n * sizeof(*s));
    uint64_t *p = bench_malloc(n * sizeof(*p));
    uint64_t *f = bench_malloc(n * sizeof(*f));
    double s_mean, p_mean;
    struct bench_row *r;

    for (int i = 0; i < cfg->lat_warmup; i++) {
        bench_call_once(inproc);
        bench_call_once(shim);
        bench_floor_ping();
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = bench_call_once(inproc);
    }
    for (int round = 0; round < BENCH_LAT_ROUNDS; round++) {
        size_t lo = n * (size_t)round / BENCH_LAT_ROUNDS;
        size_t hi = n * (size_t)(round + 1) / BENCH_LAT_ROUNDS;

        for (size_t i = lo; i < hi; i++) {
            f[i] = bench_floor_ping();
        }
        for (size_t i = lo; i < hi; i++) {
            s[i] = bench_call_once(shim);
        }
    }
    p_mean = bench_call_mean(inproc, cfg->lat_calls);
    s_mean = bench_call_mean(shim, cfg->lat_calls);
    qsort(s, n, sizeof(*s), bench_cmp_u64);
    qsort(p, n, sizeof(*p), bench_cmp_u64);
    qsort(f, n, sizeof(*f), bench_cmp_u64);

    r = bench_row_add("us", false, n, "sync call, median");
    r->shim = bench_quantile(s, n, 0.5) / 1e3;
    r->inproc = bench_quantile(p, n, 0.5) / 1e3;
    r = bench_row_add("us", false, n, "sync call, p99");
    r->shim = bench_quantile(s, n, 0.99) / 1e3;
    r->inproc = bench_quantile(p, n, 0.99) / 1e3;
    r = bench_row_add("us", false, n, "sync call, mean (one timer)");
    r->shim = s_mean / 1e3;
    r->inproc = p_mean / 1e3;
    bench_floor.median_us = bench_quantile(f, n, 0.5) / 1e3;
    bench_floor.p99_us = bench_quantile(f, n, 0.99) / 1e3;
    free(s);
    free(p);
    free(f);
}

/* ---- (b) asynchronous submissions ------------------------------------- */

/*
 * @reps rounds of @count memsets on the stream, then a stream synchronise.
 * Returns the median rates (submissions per second) with and without the
 * final synchronise, and checks that the last memset's value is there.
 */
static void bench_async_one(struct bench_api *api, const struct bench_cfg *cfg,
                            double *rate_total, double *rate_submit)
{
    double total[16], submit[16];
    uint8_t got[BENCH_MEMSET_BYTES];
    int reps = cfg->async_reps < 16 ? cfg->async_reps : 16;
    int count = cfg->async_count;

    /* Warm-up: the first batches, the stream's first use. */
    for (int i = 0; i < 1000; i++) {
        BENCH_CHECK(api, api->cuMemsetD8Async(api->dbuf, (unsigned char)i,
                                              BENCH_MEMSET_BYTES, api->stream));
    }
    BENCH_CHECK(api, api->cuStreamSynchronize(api->stream));

    for (int rep = 0; rep < reps; rep++) {
        uint64_t t0, t1, t2;

        t0 = bench_now_ns();
        for (int i = 0; i < count; i++) {
            CUresult res = api->cuMemsetD8Async(api->dbuf, (unsigned char)(i + rep),
                                                BENCH_MEMSET_BYTES, api->stream);
            if (res != CUDA_SUCCESS) {
                BENCH_CHECK(api, res);
            }
        }
        t1 = bench_now_ns();
        BENCH_CHECK(api, api->cuStreamSynchronize(api->stream));
        t2 = bench_now_ns();
        total[rep] = count / ((double)(t2 - t0) / 1e9);
        submit[rep] = count / ((double)(t1 - t0) / 1e9);

        BENCH_CHECK(api, api->cuMemcpyDtoH_v2(got, api->dbuf, sizeof(got)));
        for (size_t k = 0; k < sizeof(got); k++) {
            if (got[k] != (uint8_t)(count - 1 + rep)) {
                bench_die("%s: after %d memsets byte %zu reads %#x, want %#x",
                          api->name, count, k, got[k], (uint8_t)(count - 1 + rep));
            }
        }
    }
    *rate_total = bench_median_double(total, (size_t)reps);
    *rate_submit = bench_median_double(submit, (size_t)reps);
}

static void bench_async(struct bench_api *shim, struct bench_api *inproc,
                        const struct bench_cfg *cfg)
{
    double st, ss, pt, ps;
    struct bench_row *r;

    bench_async_one(inproc, cfg, &pt, &ps);
    bench_async_one(shim, cfg, &st, &ss);
    r = bench_row_add("M/s", true, (uint64_t)cfg->async_count,
                      "memsetD8Async %d B, incl. sync", BENCH_MEMSET_BYTES);
    r->shim = st / 1e6;
    r->inproc = pt / 1e6;
    r = bench_row_add("M/s", true, (uint64_t)cfg->async_count,
                      "memsetD8Async %d B, submit only", BENCH_MEMSET_BYTES);
    r->shim = ss / 1e6;
    r->inproc = ps / 1e6;
}

/* ---- (c) copy bandwidth ----------------------------------------------- */

static void bench_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++) {
        p[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

/* One H2D and one D2H of @size bytes, compared byte for byte. */
static void bench_verify(struct bench_api *api, uint8_t *src, uint8_t *dst, size_t size,
                         uint64_t seed)
{
    bench_fill(src, size, seed);
    memset(dst, 0x5a, size);
    BENCH_CHECK(api, api->cuMemcpyHtoD_v2(api->dbuf, src, size));
    BENCH_CHECK(api, api->cuMemcpyDtoH_v2(dst, api->dbuf, size));
    if (memcmp(src, dst, size) != 0) {
        size_t k = 0;

        while (src[k] == dst[k]) {
            k++;
        }
        bench_die("%s: %zu-byte copy round trip differs at byte %zu: %#x, want %#x",
                  api->name, size, k, dst[k], src[k]);
    }
}

static uint64_t bench_copy_iters(const struct bench_cfg *cfg, size_t size)
{
    uint64_t n = cfg->copy_budget / size;

    if (n < cfg->copy_min_iters) {
        n = cfg->copy_min_iters;
    }
    if (n > cfg->copy_max_iters) {
        n = cfg->copy_max_iters;
    }
    return n;
}

/*
 * @iters copies of @size bytes in one direction, timed in up to
 * BENCH_BATCHES batches.  Returns the median batch's bandwidth in GiB/s.
 */
static double bench_copy_run(struct bench_api *api, bool htod, void *host, size_t size,
                             uint64_t iters)
{
    double bw[BENCH_BATCHES];
    uint64_t nb = iters < BENCH_BATCHES ? iters : BENCH_BATCHES;
    uint64_t done = 0;

    /* Warm-up: fault in whatever is still lazily mapped. */
    if (htod) {
        BENCH_CHECK(api, api->cuMemcpyHtoD_v2(api->dbuf, host, size));
    } else {
        BENCH_CHECK(api, api->cuMemcpyDtoH_v2(host, api->dbuf, size));
    }
    for (uint64_t b = 0; b < nb; b++) {
        uint64_t n = iters / nb + (b < iters % nb);
        uint64_t t0 = bench_now_ns();

        for (uint64_t i = 0; i < n; i++) {
            CUresult res = htod ? api->cuMemcpyHtoD_v2(api->dbuf, host, size)
                                : api->cuMemcpyDtoH_v2(host, api->dbuf, size);
            if (res != CUDA_SUCCESS) {
                BENCH_CHECK(api, res);
            }
        }
        bw[b] = (double)(n * size) / ((double)(bench_now_ns() - t0) / 1e9) / (double)GIB;
        done += n;
    }
    if (done != iters) {
        bench_die("internal error: %" PRIu64 " of %" PRIu64 " copies", done, iters);
    }
    return bench_median_double(bw, (size_t)nb);
}

static void bench_copies(struct bench_api *shim, struct bench_api *inproc,
                         const struct bench_cfg *cfg)
{
    uint8_t *src = bench_page_alloc(cfg->max_size);
    uint8_t *dst = bench_page_alloc(cfg->max_size);
    size_t pmax = 0;
    uint8_t *psrc = NULL, *pdst = NULL;
    char sz[32];

    for (int i = 0; i < cfg->npinned; i++) {
        pmax = cfg->pinned_sizes[i] > pmax ? cfg->pinned_sizes[i] : pmax;
    }
    for (int i = 0; i < cfg->nsizes; i++) {
        size_t size = cfg->sizes[i];
        uint64_t iters = bench_copy_iters(cfg, size);
        struct bench_row *h, *d;

        bench_verify(inproc, src, dst, size, 2 * size);
        bench_verify(shim, src, dst, size, 2 * size + 1);
        bench_fmt_size(sz, sizeof(sz), size);
        h = bench_row_add("GiB/s", true, iters, "H2D %s pageable", sz);
        h->inproc = bench_copy_run(inproc, true, src, size, iters);
        h->shim = bench_copy_run(shim, true, src, size, iters);
        d = bench_row_add("GiB/s", true, iters, "D2H %s pageable", sz);
        d->inproc = bench_copy_run(inproc, false, dst, size, iters);
        d->shim = bench_copy_run(shim, false, dst, size, iters);
    }

    if (pmax) {
        BENCH_CHECK(shim, shim->cuMemAllocHost_v2((void **)&psrc, pmax));
        BENCH_CHECK(shim, shim->cuMemAllocHost_v2((void **)&pdst, pmax));
    }
    for (int i = 0; i < cfg->npinned; i++) {
        size_t size = cfg->pinned_sizes[i];
        uint64_t iters = bench_copy_iters(cfg, size);
        struct bench_row *h, *d;

        /* The cpu executor has no pinned memory: it copies pageable. */
        bench_verify(shim, psrc, pdst, size, 3 * size + 1);
        bench_fmt_size(sz, sizeof(sz), size);
        h = bench_row_add("GiB/s", true, iters, "H2D %s pinned", sz);
        h->inproc = bench_copy_run(inproc, true, src, size, iters);
        h->shim = bench_copy_run(shim, true, psrc, size, iters);
        d = bench_row_add("GiB/s", true, iters, "D2H %s pinned", sz);
        d->inproc = bench_copy_run(inproc, false, dst, size, iters);
        d->shim = bench_copy_run(shim, false, pdst, size, iters);
    }
    if (pmax) {
        BENCH_CHECK(shim, shim->cuMemFreeHost(psrc));
        BENCH_CHECK(shim, shim->cuMemFreeHost(pdst));
    }
    free(src);
    free(dst);
}

/* ---- output ----------------------------------------------------------- */

static void bench_print(const struct bench_cfg *cfg, const char *server, double secs)
{
    int w = 0;

    for (int i = 0; i < bench_nrows; i++) {
        int n = (int)strlen(bench_rows[i].name);
        w = n > w ? n : w;
    }
    printf("\n%-*s  %-6s %12s %12s %10s %8s\n", w, "figure", "unit", "shim",
           "in-process", "overhead", "iters");
    for (int i = 0; i < w + 54; i++) {
        putchar('-');
    }
    putchar('\n');
    for (int i = 0; i < bench_nrows; i++) {
        const struct bench_row *r = &bench_rows[i];

        printf("%-*s  %-6s %12.4g %12.4g %9.1fx %8" PRIu64 "\n", w, r->name, r->unit,
               r->shim, r->inproc, bench_overhead(r), r->iters);
    }
    printf("\noverhead: shim/in-process for times, in-process/shim for rates "
           "(> 1: the shim is slower)\n");
    printf("transport floor: a bare %s socket round trip between two processes "
           "(%d/%d bytes),\n  sampled between the shim's sync calls: median %.2f us, "
           "p99 %.2f us; the shim's median call is %.2f us above it\n",
           bench_floor.kind, BENCH_FLOOR_REQ, BENCH_FLOOR_REP, bench_floor.median_us,
           bench_floor.p99_us, bench_rows[0].shim - bench_floor.median_us);
    printf("label %s, server %s, %s run, %.1f s\n", cfg->label, server,
           cfg->quick ? "quick" : "full", secs);
}

static void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fprintf(f, "\\%c", *s);
        } else if ((unsigned char)*s < 0x20) {
            fprintf(f, "\\u%04x", (unsigned char)*s);
        } else {
            fputc(*s, f);
        }
    }
    fputc('"', f);
}

static void bench_json_num(FILE *f, double v)
{
    if (isfinite(v)) {
        fprintf(f, "%.6g", v);
    } else {
        fprintf(f, "null");
    }
}

static void bench_write_json(const struct bench_cfg *cfg, const char *server,
                             const char *date)
{
    FILE *f = fopen(cfg->json, "w");

    if (!f) {
        bench_die("%s: %s", cfg->json, strerror(errno));
    }
    fprintf(f, "{\n  \"label\": ");
    bench_json_str(f, cfg->label);
    fprintf(f, ",\n  \"server\": ");
    bench_json_str(f, server);
    fprintf(f, ",\n  \"date\": ");
    bench_json_str(f, date);
    fprintf(f, ",\n  \"quick\": %s,\n  \"timer_overhead_ns\": ", cfg->quick ? "true" : "false");
    bench_json_num(f, bench_timer_ns);
    fprintf(f, ",\n  \"floor\": {\"transport\": ");
    bench_json_str(f, bench_floor.kind);
    fprintf(f, ", \"median_us\": ");
    bench_json_num(f, bench_floor.median_us);
    fprintf(f, ", \"p99_us\": ");
    bench_json_num(f, bench_floor.p99_us);
    fprintf(f, "}");
    fprintf(f, ",\n  \"results\": [\n");
    for (int i = 0; i < bench_nrows; i++) {
        const struct bench_row *r = &bench_rows[i];

        fprintf(f, "    {\"name\": ");
        bench_json_str(f, r->name);
        fprintf(f, ", \"unit\": ");
        bench_json_str(f, r->unit);
        fprintf(f, ", \"kind\": \"%s\", \"shim\": ", r->is_rate ? "rate" : "time");
        bench_json_num(f, r->shim);
        fprintf(f, ", \"in_process\": ");
        bench_json_num(f, r->inproc);
        fprintf(f, ", \"overhead\": ");
        bench_json_num(f, bench_overhead(r));
        fprintf(f, ", \"iterations\": %" PRIu64 "}%s\n", r->iters,
                i + 1 < bench_nrows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        bench_die("%s: %s", cfg->json, strerror(errno));
    }
}

/* ---- main ------------------------------------------------------------- */

static void bench_usage(FILE *f)
{
    fprintf(f,
            "Usage: vgc_bench [--quick] [--label NAME] [--json FILE]\n"
            "\n"
            "Times CUDA driver calls through the shim (libcuda.so.1 on\n"
            "LD_LIBRARY_PATH, VGC_SERVER=unix:PATH or tcp:HOST:PORT) against the\n"
            "same calls on an in-process cpu executor, and prints both and their\n"
            "ratio.\n"
            "\n"
            "  --quick        small counts, a few seconds (for tests)\n"
            "  --label NAME   shown in the header, e.g. unix or tcp\n"
            "  --json FILE    also write the results as JSON\n"
            "  -h, --help     this text\n");
}

static void bench_config(struct bench_cfg *cfg, bool quick)
{
    static const size_t sizes[] = { 4 * KIB, 64 * KIB, 1 * MIB, 16 * MIB, 256 * MIB };
    static const size_t pinned[] = { 16 * MIB, 256 * MIB };

    cfg->quick = quick;
    cfg->lat_warmup = quick ? 200 : 2000;
    cfg->lat_calls = quick ? 2000 : 20000;
    cfg->async_count = quick ? 10000 : 100000;
    cfg->async_reps = quick ? 1 : 3;
    cfg->copy_budget = quick ? 32 * MIB : 512 * MIB;
    cfg->copy_min_iters = quick ? 1 : 3;
    cfg->copy_max_iters = quick ? 500 : 5000;
    /* The quick run stops at 16 MiB: no 256 MiB buffers on small test VMs. */
    cfg->nsizes = quick ? 4 : 5;
    memcpy(cfg->sizes, sizes, (size_t)cfg->nsizes * sizeof(sizes[0]));
    cfg->npinned = quick ? 1 : 2;
    memcpy(cfg->pinned_sizes, pinned, (size_t)cfg->npinned * sizeof(pinned[0]));
    cfg->max_size = cfg->sizes[cfg->nsizes - 1];
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quick", no_argument, NULL, 'q' },
        { "label", required_argument, NULL, 'l' },
        { "json", required_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct bench_cfg cfg = { .label = "-" };
    struct bench_api shim, inproc;
    const char *server = getenv("VGC_SERVER");
    bool quick = false;
    const char *label = "-", *json = NULL;
    char date[64], name[256] = "";
    struct utsname un;
    time_t now = time(NULL);
    uint64_t t_start;
    int c;

    while ((c = getopt_long(argc, argv, "ql:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quick = true;
            break;
        case 'l':
            label = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'h':
            bench_usage(stdout);
            return 0;
        default:
            bench_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        bench_usage(stderr);
        return 2;
    }
    bench_config(&cfg, quick);
    cfg.label = label;
    cfg.json = json;
    if ((!server || !*server) && access("/dev/vgc0", F_OK) == 0) {
        server = "device:/dev/vgc0";    /* in a guest: the shim's own choice */
    }
    if (!server || !*server) {
        bench_die("VGC_SERVER is not set (unix:PATH or tcp:HOST:PORT); "
                  "see bench/README.md or use bench/run.sh");
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", localtime(&now));
    if (uname(&un) != 0) {
        memset(&un, 0, sizeof(un));
    }
    bench_timer_ns = bench_timer_overhead();
    t_start = bench_now_ns();

    bench_floor_start(server);
    bench_api_shim(&shim);
    bench_api_inproc(&inproc);
    bench_open(&shim, cfg.max_size);
    bench_open(&inproc, cfg.max_size);
    BENCH_CHECK(&shim, cuDeviceGetName(name, sizeof(name), shim.dev));

    printf("vgc_bench [%s]: shim over %s vs in-process cpu executor, %s run\n",
           cfg.label, server, cfg.quick ? "quick" : "full");
    printf("%s, %s %s, device \"%s\", clock_gettime pair %.0f ns "
           "(inside per-call times)\n",
           date, un.sysname, un.release, name, bench_timer_ns);

    printf("  sync call latency ...\n");
    bench_latency(&shim, &inproc, &cfg);
    printf("  async submissions ...\n");
    bench_async(&shim, &inproc, &cfg);
    printf("  copies ...\n");
    bench_copies(&shim, &inproc, &cfg);

    bench_close(&inproc);
    bench_close(&shim);
    bench_floor_stop();
    bench_print(&cfg, server, (double)(bench_now_ns() - t_start) / 1e9);
    if (cfg.json) {
        bench_write_json(&cfg, server, date);
    }
    return 0;
}
