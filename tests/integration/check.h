/*
 * check.h - tiny TAP-style check helpers shared by the integration tests.
 *
 * Every check prints exactly one line:
 *     ok - <description>
 *     not ok - <description>: got X want Y   (file:line)
 * and itest_done() prints the TAP plan ("1..N") plus a summary and returns
 * the process exit status: 0 when every check passed, 1 otherwise.
 * A fatal setup failure prints "Bail out! ..." and exits with status 2.
 *
 * Only <cuda.h>, libc and pthreads are used, so the programs behave the
 * same against NVIDIA's libcuda.so.1 and against the virtio-gpu-compute shim.
 *
 * Environment:
 *   VGC_ITEST_REAL_DRIVER=1   skip checks that hand deliberately bogus
 *                             handles (e.g. (CUstream)0x1234567) to the driver;
 *                             NVIDIA's driver may crash on those, the shim
 *                             validates handles and must answer with an error.
 *   VGC_ITEST_TIMEOUT=<sec>   watchdog for the whole program (default 60).
 *   VGC_ITEST_QUIET=1         do not print "ok" lines (failures still print).
 */
#ifndef VGC_ITEST_CHECK_H
#define VGC_ITEST_CHECK_H

#include <cuda.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__)
#define ITEST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ITEST_NORETURN __attribute__((noreturn))
#else
#define ITEST_PRINTF(a, b)
#define ITEST_NORETURN
#endif

/* ------------------------------------------------------------------------ */
/* Global state (header-only: one translation unit per test program).       */

static pthread_mutex_t itest_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned itest_npass, itest_nfail, itest_nskip;
static int itest_quiet = -1;
/* When set, every line is printed as a TAP comment ("# ok - ..."): used by
 * forked child processes whose results the parent reports as one line. */
static int itest_comment_lines;
/* Optional per-thread prefix such as "size=4097 off=3", shown in [..]. */
static _Thread_local char itest_ctx_buf[160];

static inline int itest_is_quiet(void)
{
    if (itest_quiet < 0) {
        const char *q = getenv("VGC_ITEST_QUIET");
        itest_quiet = (q && *q && strcmp(q, "0") != 0) ? 1 : 0;
    }
    return itest_quiet;
}

/* Set the context prefix for following check lines of this thread ("" clears). */
static inline ITEST_PRINTF(1, 2) void itest_ctx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(itest_ctx_buf, sizeof itest_ctx_buf, fmt, ap);
    va_end(ap);
}

/* Name of a CUresult that never depends on cuGetErrorName working (NVIDIA's
 * link stub, for instance, answers CUDA_ERROR_STUB_LIBRARY to that too). */
static inline const char *itest_errname(CUresult r)
{
    static _Thread_local char buf[4][96];
    static _Thread_local unsigned slot;
    const char *s = NULL;
    char *out = buf[slot++ % 4];
    if (cuGetErrorName(r, &s) != CUDA_SUCCESS || s == NULL)
        s = (r == CUDA_ERROR_STUB_LIBRARY) ? "CUDA_ERROR_STUB_LIBRARY" : "?";
    snprintf(out, sizeof buf[0], "%s (%d)", s, (int)r);
    return out;
}

/* Core reporter: prints one line, updates the counters, returns ok. */
static inline int itest_vreport(int ok, const char *file, int line, const char *detail,
                                const char *fmt, va_list ap)
{
    char desc[512];
    vsnprintf(desc, sizeof desc, fmt, ap);
    pthread_mutex_lock(&itest_lock);
    if (itest_comment_lines)
        fputs("# ", stdout);
    if (ok) {
        itest_npass++;
        if (itest_comment_lines || !itest_is_quiet()) {
            if (itest_ctx_buf[0])
                printf("ok - [%s] %s\n", itest_ctx_buf, desc);
            else
                printf("ok - %s\n", desc);
        }
    } else {
        itest_nfail++;
        if (itest_ctx_buf[0])
            printf("not ok - [%s] %s: %s  (%s:%d)\n", itest_ctx_buf, desc, detail, file, line);
        else
            printf("not ok - %s: %s  (%s:%d)\n", desc, detail, file, line);
    }
    fflush(stdout);
    pthread_mutex_unlock(&itest_lock);
    return ok;
}

static inline ITEST_PRINTF(5, 6) int itest_report(int ok, const char *file, int line,
                                                  const char *detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ok = itest_vreport(ok, file, line, detail, fmt, ap);
    va_end(ap);
    return ok;
}

/* CHECK(cond, fmt, ...): generic boolean check with a description. */
static inline ITEST_PRINTF(5, 6) int itest_check(int ok, const char *expr, const char *file,
                                                 int line, const char *fmt, ...)
{
    char detail[320];
    va_list ap;
    snprintf(detail, sizeof detail, "expected `%s` to hold", expr);
    va_start(ap, fmt);
    ok = itest_vreport(ok, file, line, detail, fmt, ap);
    va_end(ap);
    return ok;
}
#define CHECK(cond, ...) itest_check(!!(cond), #cond, __FILE__, __LINE__, __VA_ARGS__)

/* CHECK_EQ(got, want, fmt, ...): integer equality, prints both values. */
static inline ITEST_PRINTF(5, 6) int itest_check_eq(long long got, long long want,
                                                    const char *file, int line,
                                                    const char *fmt, ...)
{
    char detail[160];
    va_list ap;
    snprintf(detail, sizeof detail, "got %lld (0x%llx) want %lld (0x%llx)", got,
             (unsigned long long)got, want, (unsigned long long)want);
    va_start(ap, fmt);
    int ok = itest_vreport(got == want, file, line, detail, fmt, ap);
    va_end(ap);
    return ok;
}
#define CHECK_EQ(got, want, ...) \
    itest_check_eq((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)

/* CHECK_CU(call): the call must return CUDA_SUCCESS. Evaluates to 1/0. */
static inline int itest_check_cu(CUresult r, const char *call, const char *file, int line)
{
    char detail[160];
    snprintf(detail, sizeof detail, "got %s want CUDA_SUCCESS", itest_errname(r));
    return itest_report(r == CUDA_SUCCESS, file, line, detail, "%s", call);
}
#define CHECK_CU(call) itest_check_cu((call), #call, __FILE__, __LINE__)

/* QUIET_CU(call): like CHECK_CU but prints (and counts) nothing on success;
 * for plumbing calls whose effect is verified by a following check. */
static inline int itest_quiet_cu(CUresult r, const char *call, const char *file, int line)
{
    if (r == CUDA_SUCCESS)
        return 1;
    return itest_check_cu(r, call, file, line);
}
#define QUIET_CU(call) itest_quiet_cu((call), #call, __FILE__, __LINE__)

/* EXPECT_CU(call, CUDA_ERROR_X): the call must return exactly that code. */
static inline int itest_expect_cu(CUresult r, CUresult want, const char *call,
                                  const char *wantname, const char *file, int line)
{
    char detail[200];
    snprintf(detail, sizeof detail, "got %s want %s", itest_errname(r), itest_errname(want));
    return itest_report(r == want, file, line, detail, "%s -> %s", call, wantname);
}
#define EXPECT_CU(call, want) itest_expect_cu((call), (want), #call, #want, __FILE__, __LINE__)

/* CHECK_BYTES(got, want, n, fmt, ...): byte-exact comparison of two buffers. */
static inline ITEST_PRINTF(6, 7) int itest_check_bytes(const void *got, const void *want,
                                                       size_t n, const char *file, int line,
                                                       const char *fmt, ...)
{
    const unsigned char *g = (const unsigned char *)got, *w = (const unsigned char *)want;
    char detail[200] = "";
    int ok = memcmp(g, w, n) == 0;
    if (!ok) {
        size_t first = 0, bad = 0;
        while (g[first] == w[first])
            first++;
        for (size_t i = first; i < n; i++)
            bad += g[i] != w[i];
        snprintf(detail, sizeof detail,
                 "got 0x%02x want 0x%02x at byte %zu of %zu (%zu bytes differ)",
                 g[first], w[first], first, n, bad);
    }
    va_list ap;
    va_start(ap, fmt);
    ok = itest_vreport(ok, file, line, detail, fmt, ap);
    va_end(ap);
    return ok;
}
#define CHECK_BYTES(got, want, n, ...) \
    itest_check_bytes((got), (want), (n), __FILE__, __LINE__, __VA_ARGS__)

/* Prints the plan and summary; returns the exit status for main(). */
static inline int itest_done(void)
{
    pthread_mutex_lock(&itest_lock);
    printf("1..%u\n", itest_npass + itest_nfail);
    printf("# %u passed, %u failed, %u skipped\n", itest_npass, itest_nfail, itest_nskip);
    fflush(stdout);
    int rc = itest_nfail ? 1 : 0;
    pthread_mutex_unlock(&itest_lock);
    return rc;
}

/* Abort the program: the remaining checks would be meaningless. */
static inline ITEST_PRINTF(1, 2) ITEST_NORETURN void itest_bail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&itest_lock);
    printf("%sBail out! %s\n", itest_comment_lines ? "# " : "", msg);
    printf("# %u passed, %u failed, %u skipped before bailing out\n", itest_npass,
           itest_nfail, itest_nskip);
    fflush(stdout);
    pthread_mutex_unlock(&itest_lock);
    exit(2);
}

/* REQUIRE_CU(call): like CHECK_CU, but bail out of the program on failure. */
#define REQUIRE_CU(call)                                                          \
    do {                                                                          \
        if (!itest_check_cu((call), #call, __FILE__, __LINE__))                   \
            itest_bail("required call failed: %s (%s:%d)", #call, __FILE__, __LINE__); \
    } while (0)

/* SKIP: counted separately, printed as a TAP "# SKIP" line. */
static inline void itest_skip(const char *what, const char *why)
{
    pthread_mutex_lock(&itest_lock);
    itest_nskip++;
    printf("%sok - %s # SKIP %s\n", itest_comment_lines ? "# " : "", what, why);
    fflush(stdout);
    pthread_mutex_unlock(&itest_lock);
}

/* True when checks that pass deliberately bogus handles must be skipped. */
static inline int itest_skip_bogus_handles(void)
{
    const char *v = getenv("VGC_ITEST_REAL_DRIVER");
    return v && *v && strcmp(v, "0") != 0;
}

/* ------------------------------------------------------------------------ */
/* Watchdog: a hung shim or daemon must not hang the test run.              */

static inline void itest_alarm_handler(int sig)
{
    static const char msg[] = "Bail out! watchdog timeout (VGC_ITEST_TIMEOUT) expired\n";
    (void)sig;
    ssize_t w = write(STDOUT_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static inline void itest_watchdog(void)
{
    const char *t = getenv("VGC_ITEST_TIMEOUT");
    unsigned secs = 60;
    if (t && atoi(t) > 0)
        secs = (unsigned)atoi(t);
    signal(SIGALRM, itest_alarm_handler);
    alarm(secs);
}

/* ------------------------------------------------------------------------ */
/* Setup the way cudart does it: cuInit, device 0, retain + set primary ctx. */

static inline void itest_init_driver(void)
{
    CUresult r = cuInit(0);
    if (!itest_check_cu(r, "cuInit(0)", __FILE__, __LINE__))
        itest_bail("cuInit(0) failed with %s; is LD_LIBRARY_PATH pointing at the shim's "
                   "libcuda.so.1 and VGC_SERVER at a running vgcd?",
                   itest_errname(r));
}

static inline void itest_setup(CUdevice *dev, CUcontext *ctx)
{
    itest_watchdog();
    itest_init_driver();
    REQUIRE_CU(cuDeviceGet(dev, 0));
    REQUIRE_CU(cuDevicePrimaryCtxRetain(ctx, *dev));
    REQUIRE_CU(cuCtxSetCurrent(*ctx));
}

static inline void itest_teardown(CUdevice dev)
{
    CHECK_CU(cuCtxSetCurrent(NULL));
    CHECK_CU(cuDevicePrimaryCtxRelease(dev));
}

/* ------------------------------------------------------------------------ */
/* Deterministic data: xorshift64* stream, works on unaligned buffers.      */

static inline uint64_t itest_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline void itest_fill(void *buf, size_t n, uint64_t seed)
{
    unsigned char *p = (unsigned char *)buf;
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    if (s == 0)
        s = 1;
    while (n >= 8) {
        uint64_t v = itest_xorshift(&s);
        memcpy(p, &v, 8);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = itest_xorshift(&s);
        memcpy(p, &v, n);
    }
}

/* malloc that bails out instead of returning NULL. */
static inline void *itest_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        itest_bail("out of host memory allocating %zu bytes", n);
    return p;
}

#define MiB ((size_t)1 << 20)

#endif /* VGC_ITEST_CHECK_H */
