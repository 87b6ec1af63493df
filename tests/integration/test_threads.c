/*
 * test_threads.c - concurrent use of one context from several threads.
 *
 * Proves that NTHREADS pthreads sharing the primary context can each run
 * ITERS rounds of alloc / HtoD / DtoH / verify / free on their own stream
 * at the same time, byte-exact, with no crosstalk: every thread uses its own
 * data pattern, alternates synchronous and stream-async copies, and uses
 * varying sizes (including 1 byte and unaligned sizes). Each thread binds the
 * context itself (a new thread has no current context).
 */
#include "check.h"

#define NTHREADS 4
#define ITERS 50
#define MAXSZ (256 * 1024)

static CUcontext g_ctx;

struct worker {
    int idx;
    int iterations_ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = (struct worker *)arg;
    itest_ctx("thread %d", w->idx);
    if (!CHECK_CU(cuCtxSetCurrent(g_ctx)))
        return NULL;
    CUstream s = NULL;
    if (!CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)))
        return NULL;

    unsigned char *src = itest_malloc(MAXSZ + 8), *dst = itest_malloc(MAXSZ + 8);
    uint64_t rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->idx + 1);

    for (int it = 0; it < ITERS; it++) {
        size_t n;
        if (it == 0)
            n = 1;
        else if (it == 1)
            n = MAXSZ;
        else
            n = 1 + (size_t)(itest_xorshift(&rng) % MAXSZ);
        size_t hoff = (size_t)it % 8; /* unaligned host buffers too */
        int async = it & 1;

        itest_fill(src + hoff, n, ((uint64_t)w->idx << 32) | (uint64_t)it);
        memset(dst + hoff, 0, n);

        CUdeviceptr d = 0;
        if (!QUIET_CU(cuMemAlloc(&d, n)))
            continue;
        CUresult r;
        if (async) {
            r = cuMemcpyHtoDAsync(d, src + hoff, n, s);
            if (r == CUDA_SUCCESS)
                r = cuMemcpyDtoHAsync(dst + hoff, d, n, s);
            if (r == CUDA_SUCCESS)
                r = cuStreamSynchronize(s);
            if (r == CUDA_SUCCESS)
                r = cuStreamQuery(s);
        } else {
            r = cuMemcpyHtoD(d, src + hoff, n);
            if (r == CUDA_SUCCESS)
                r = cuMemcpyDtoH(dst + hoff, d, n);
        }
        int ok = itest_quiet_cu(r, async ? "HtoDAsync/DtoHAsync/StreamSynchronize"
                                         : "HtoD/DtoH",
                                __FILE__, __LINE__);
        if (ok && memcmp(dst + hoff, src + hoff, n) != 0)
            ok = CHECK_BYTES(dst + hoff, src + hoff, n, "iteration %d: %zu bytes (%s)", it, n,
                             async ? "async" : "sync");
        if (!QUIET_CU(cuMemFree(d)))
            ok = 0;
        w->iterations_ok += ok;
    }

    CHECK_CU(cuStreamDestroy(s));
    free(src);
    free(dst);
    CHECK_EQ(w->iterations_ok, ITERS, "iterations of alloc/HtoD/DtoH/verify/free byte-exact");
    itest_ctx("%s", "");
    return NULL;
}

int main(void)
{
    CUdevice dev;
    itest_setup(&dev, &g_ctx);

    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i].idx = i;
        w[i].iterations_ok = 0;
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
            itest_bail("pthread_create failed");
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);

    CHECK_CU(cuCtxSynchronize());

    itest_teardown(dev);
    return itest_done();
}
